#!/usr/bin/env bash
# ci/test.sh — the test command: installs what the build needs, builds, runs
# every test with ctest, then builds again with AddressSanitizer and
# UndefinedBehaviorSanitizer and runs every test once more.
set -euo pipefail
cd "$(dirname "$0")/.."

ci/bootstrap.sh
echo "== lint (ci/lint.sh: the rules of the architecture) =="
ci/lint.sh
jobs=$(nproc 2>/dev/null || echo 2)

echo "== build (RelWithDebInfo) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$jobs"
echo "== tests =="
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== build (Asan: address + undefined behaviour sanitizers) =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Asan
cmake --build build-asan -j"$jobs"
echo "== tests under sanitizers =="
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan --output-on-failure -j"$jobs"
