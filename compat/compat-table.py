#!/usr/bin/env python3
"""Prints the README's compatibility table (Markdown) from what the suites test.

Java columns: the surefire XML reports of compat/java (one directory per profile, written by
`cargo test --workspace` through compat/tests/java_client.rs, or by mvn -P<profile> test).
Rust columns: the hand-kept test lists of compat/features.tsv, checked against the sources.

A feature "works" for a Java client when its tests passed; "not yet" when the test that passed
is a notYet* test (it asserts ringmq's current refusal); "FAILS" when a test failed; "?" when
the reports hold no result (suite not run).

Usage: python3 compat/compat-table.py [--reports compat/java/target]
"""
import argparse
import glob
import os
import re
import sys
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PROFILES = [("client5", "Java 5.x"), ("client4", "Java 4.9.x")]


def surefire_results(directory):
    """{"Class.method": "passed" | "failed" | "skipped"} from TEST-*.xml in directory."""
    results = {}
    for path in glob.glob(os.path.join(directory, "TEST-*.xml")):
        for case in ET.parse(path).getroot().iter("testcase"):
            cls = case.get("classname", "").rsplit(".", 1)[-1]
            name = re.sub(r"\(\)$", "", case.get("name", ""))
            if case.find("failure") is not None or case.find("error") is not None:
                status = "failed"
            elif case.find("skipped") is not None:
                status = "skipped"
            else:
                status = "passed"
            results[f"{cls}.{name}"] = status
    return results


def java_cell(tests, results):
    statuses = {t: results.get(t) for t in tests}
    if any(s == "failed" for s in statuses.values()):
        return "FAILS"
    passed = [t for t, s in statuses.items() if s == "passed"]
    if not passed:
        return "?"
    if any(not t.split(".", 1)[1].startswith("notYet") for t in passed):
        return "works"
    return "not yet"


def rust_cell(spec, folder):
    if spec == "-":
        return "untested"
    for item in spec.split(","):
        file, fn = item.split("::")
        path = os.path.join(ROOT, folder, file)
        with open(path, encoding="utf-8") as f:
            if not re.search(rf"fn {re.escape(fn)}\b", f.read()):
                sys.exit(f"compat/features.tsv names {item}, which {folder}/{file} does not define")
    return "works"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", default=os.path.join(HERE, "java", "target"))
    args = parser.parse_args()
    results = {p: surefire_results(os.path.join(args.reports, p, "surefire-reports")) for p, _ in PROFILES}
    rows = []
    with open(os.path.join(HERE, "features.tsv"), encoding="utf-8") as f:
        lines = [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]
    for line in lines[1:]:
        feature, java, rust_ext, rust_own = line.split("\t")
        java_tests = java.split(",")
        for p, _ in PROFILES:
            if results[p]:
                unknown = [t for t in java_tests if t not in results[p]]
                if unknown:
                    sys.exit(f"compat/features.tsv names {unknown}, not in the {p} reports")
        cells = [java_cell(java_tests, results[p]) for p, _ in PROFILES]
        cells.append(rust_cell(rust_ext, "compat/tests"))
        cells.append(rust_cell(rust_own, "client/tests"))
        rows.append([feature] + cells)
    header = ["feature"] + [label for _, label in PROFILES] + ["rocketmq-client-rust 1.0.0", "ringmq-client"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")


if __name__ == "__main__":
    main()
