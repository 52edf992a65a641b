#!/usr/bin/env bash
# The repository's .clang-format holds for every C file we own (product and tests): any
# drift fails, naming the files; `clang-format -i FILE` fixes one.
set -euo pipefail
: "${PILOT_SRC:?}"
cd "$PILOT_SRC"
command -v clang-format >/dev/null || { echo "FAIL: clang-format is not installed (make deps)"; exit 1; }
mapfile -t files < <(git ls-files '*.c' '*.h' | grep -v '^tests/peers/')
[ ${#files[@]} -gt 0 ] || { echo "FAIL: no C files found"; exit 1; }
bad=()
for f in "${files[@]}"; do
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
    printf 'FAIL: not formatted: %s\n' "${bad[@]}"
    exit 1
fi
echo "format: ${#files[@]} files match .clang-format ($(clang-format --version))"
