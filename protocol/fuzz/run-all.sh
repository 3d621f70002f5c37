#!/usr/bin/env bash
# Runs every fuzz target of ringmq-protocol for N seconds each (default 60), on the stable
# toolchain. Stops at the first crash; its input is saved under artifacts/<target>/.
# Not part of CI (see CONTRIBUTING.md, "Fuzzing").
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for target in $(cargo fuzz list); do
    echo "== fuzz target $target for ${seconds}s"
    # --sanitizer none: AddressSanitizer needs the nightly-only -Zsanitizer; libFuzzer's
    # coverage instrumentation itself works on stable. --debug-assertions turns on
    # debug_assert! and integer-overflow checks, which are what catch our bugs.
    cargo fuzz run --sanitizer none --debug-assertions "$target" -- -max_total_time="$seconds"
done
