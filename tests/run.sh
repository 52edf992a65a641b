#!/usr/bin/env bash
# Runs the whole suite: every meson test in the sanitizer build (unit + integration), and
# prints one closing line "N passed, N failed[, N skipped]" counted from meson's test log.
# Usage: tests/run.sh SAN_BUILD_DIR [PLAIN_BUILD_DIR]
set -uo pipefail
san=${1:-build-san}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0}

meson test -C "$san" --print-errorlogs --num-processes 2 --timeout-multiplier 3
rc=$?
/usr/bin/python3 - "$san/meson-logs/testlog.json" <<'PY'
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0, "EXPECTEDFAIL": 0, "UNEXPECTEDPASS": 0, "TIMEOUT": 0, "ERROR": 0}
try:
    with open(sys.argv[1]) as f:
        for line in f:
            r = json.loads(line)
            counts[r["result"]] = counts.get(r["result"], 0) + 1
except FileNotFoundError:
    pass
passed = counts["OK"] + counts["EXPECTEDFAIL"]
failed = counts["FAIL"] + counts["TIMEOUT"] + counts["ERROR"] + counts["UNEXPECTEDPASS"]
print(f"{passed} passed, {failed} failed, {counts['SKIP']} skipped")
PY
if [ "$rc" -ne 0 ]; then exit "$rc"; fi
