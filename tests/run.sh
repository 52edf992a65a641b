#!/usr/bin/env bash
# Runs the whole suite: every meson test in the ASan+UBSan build (unit + integration), then
# the threaded unit tests again in the TSan build, and prints one closing line
# "N passed, N failed, N skipped" counted from meson's test logs.
# Usage: tests/run.sh SAN_BUILD_DIR [TSAN_BUILD_DIR]
set -uo pipefail
san=${1:-build-san}
tsan=${2:-}
top=$(cd "$(dirname "$0")/.." && pwd)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp:print_suppressions=0}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}

rc=0
logs=()
meson test -C "$san" --print-errorlogs --num-processes 2 || rc=1
logs+=("$san/meson-logs/testlog.json")
if [ -n "$tsan" ]; then
    # The TSan build holds only these tests (see TSAN_TARGETS in the Makefile).
    meson test -C "$tsan" --no-rebuild --print-errorlogs --num-processes 2 \
        --suite tsan || rc=1
    logs+=("$tsan/meson-logs/testlog.json")
fi

/usr/bin/python3 - "${logs[@]}" <<'PY'
import json, os, sys
passed = failed = skipped = 0
# With the peers built (make test), a peer-judged test that skips did not judge: a failure.
peers = bool(os.environ.get("PILOT_PEERS_BIN"))
for path in sys.argv[1:]:
    try:
        with open(path) as f:
            for line in f:
                t = json.loads(line)
                r = t["result"]
                suites = t["name"].split(":", 1)[-1].split(" / ")[0].split("+")
                if r == "SKIP" and peers and ("peers" in suites or
                                              "PILOT_PEERS_BIN" in (t.get("stdout") or "")):
                    print("a peers test skipped although the peers are built: %s" % t["name"])
                    failed += 1
                elif r in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                elif r == "SKIP":
                    skipped += 1
                else:
                    failed += 1
    except FileNotFoundError:
        print(f"no test log at {path}: counted as one failure")
        failed += 1
if passed == 0:
    print("no test ran: counted as one failure")
    failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY
[ $? -eq 0 ] || rc=1
exit $rc
