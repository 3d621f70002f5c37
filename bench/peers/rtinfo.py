#!/usr/bin/env python3
"""GET_BROKER_RUNTIME_INFO (code 28) to one broker; prints the KV table as JSON.

    python3 bench/peers/rtinfo.py HOST:PORT

The header names serializeTypeCurrentRPC: rocketmq-rust closes connections whose JSON header
lacks it. Exit status 1 if the broker does not answer with a table.
"""
import json, socket, struct, sys

host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=5)
hdr = json.dumps({"code": 28, "language": "JAVA", "version": 479, "opaque": 1,
                  "flag": 0, "serializeTypeCurrentRPC": "JSON",
                  "extFields": {}}).encode()
s.sendall(struct.pack(">II", 4 + len(hdr), len(hdr)) + hdr)

def recv(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise SystemExit("closed")
        b += c
    return b

(total,) = struct.unpack(">I", recv(4))
frame = recv(total)
(hl,) = struct.unpack(">I", frame[:4])
hl &= 0xFFFFFF
header = json.loads(frame[4:4 + hl])
body = frame[4 + hl:]
if header.get("code") != 0:
    raise SystemExit(f"error {header}")
print(json.dumps(json.loads(body)["table"]))
