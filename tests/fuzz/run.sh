#!/usr/bin/env bash
# make fuzz: every libFuzzer target (clang, ASan+UBSan, the libraries coverage-instrumented)
# for FUZZ_RUNS executions or FUZZ_TIME seconds, whichever comes first (10 million / 30 min
# by default), one target at a time from a copy of its committed corpus. Afterwards the
# inputs that found new coverage are merged into tests/fuzz/corpus/<name>/ (libFuzzer's
# -merge=1 keeps only those that add coverage, so the committed corpus grows minimally and
# keeps every hand-made reproducer). A crash stops the run with the artifact's path.
# Prints one table row per target (executions, edges, features, corpus added) and writes
# them to BUILD/fuzz-report.md for docs/FUZZING.md.
# Usage: tests/fuzz/run.sh [BUILD_DIR] [TARGET...]
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build-fuzz}
shift || true
runs=${FUZZ_RUNS:-10000000}
secs=${FUZZ_TIME:-1800}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(yaml mesh_json node watchline csr ca_request ads_request)

need=()
command -v clang >/dev/null 2>&1 || need+=(clang)
dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q "ok installed" ||
    need+=(libclang-rt-14-dev)
if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "fuzz: need Debian packages ${need[*]} (run as root)" >&2; exit 1; }
    echo "fuzz: installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" \
        >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install \
        -y -qq --no-install-recommends "${need[@]}" >/dev/null; } || exit 1
fi
bash "$top/.ci/deps.sh" >/dev/null || exit 1
if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" "$top" --buildtype=debug -Db_sanitize=address,undefined \
        -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link >/dev/null || exit 1
fi
if ! ninja -C "$build" $(printf 'tests/fuzz/fuzz_%s_libfuzzer ' "${targets[@]}") \
    >"$build/fuzz-build.log" 2>&1; then
    grep -E 'error|FAILED' "$build/fuzz-build.log" | head -20
    exit 1
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp:print_suppressions=0}
report="$build/fuzz-report.md"
{
    echo "| target | seconds | executions | edges (cov) | features (ft) | corpus added |"
    echo "|---|---|---|---|---|---|"
} >"$report"
rc=0
for t in "${targets[@]}"; do
    exe="$build/tests/fuzz/fuzz_${t}_libfuzzer"
    work=$(mktemp -d "/tmp/fuzz-$t.XXXX")
    mkdir -p "$work/corpus" "$work/art"
    cp "$top/tests/fuzz/corpus/$t/"* "$work/corpus/" 2>/dev/null
    t0=$(date +%s)
    "$exe" "$work/corpus" -artifact_prefix="$work/art/" -runs="$runs" -max_total_time="$secs" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$work/log" 2>&1
    frc=$?
    dt=$(($(date +%s) - t0))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$work/log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    if [ $frc -ne 0 ] || ls "$work/art/"* >/dev/null 2>&1; then
        echo "fuzz_$t: FAILED (exit $frc); artifacts in $work/art, log $work/log"
        tail -n 30 "$work/log"
        rc=1
        break
    fi
    before=$(ls "$top/tests/fuzz/corpus/$t" | wc -l)
    "$exe" -merge=1 "$top/tests/fuzz/corpus/$t" "$work/corpus" >"$work/merge.log" 2>&1
    added=$(($(ls "$top/tests/fuzz/corpus/$t" | wc -l) - before))
    row="| $t | $dt | ${execs:-?} | ${cov:-?} | ${ft:-?} | $added |"
    echo "$row" | tee -a "$report"
    rm -rf "$work"
done
echo "fuzz report: $report"
exit $rc
