#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS [HARNESS...] — builds the fuzz harnesses with clang
# and libFuzzer (address and undefined sanitizers) in build-fuzz/, runs each
# for SECONDS and merges the inputs that reach new code into the committed
# corpus tests/fuzz/corpus/<harness>/. A crash input is written to
# tests/fuzz/crashes/<harness>-crash-<sha1>; the script then exits 1.
# Without HARNESS it runs every harness named in tests/fuzz/CMakeLists.txt.
# BH_FUZZ_BUILD_DIR overrides the build folder; BH_FUZZ_NO_BUILD=1 skips the
# build (a second run.sh started next to a first one that already built).
set -u
if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
    echo "usage: tests/fuzz/run.sh SECONDS [HARNESS...]" >&2
    exit 2
fi
secs=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${BH_FUZZ_BUILD_DIR:-$src/build-fuzz}
if [ $# -gt 0 ]; then
    harnesses=("$@")
else
    mapfile -t harnesses < <(sed -n 's/^bh_fuzz(\([a-z_]*\) .*/\1/p' "$here/CMakeLists.txt")
fi

# The longest input worth trying per harness: past it the parsers only see
# more of the same, and short inputs keep the committed corpus small.
max_len() {
    case $1 in
    rare) echo 1024 ;;
    template | pipeline | detect | sse) echo 4096 ;;
    *) echo 8192 ;;
    esac
}

# Flags of one harness. diff: libgit2 1.5 leaks inside git_index_write_tree_to
# (the harness making its commits; bulkhead never writes a tree) on some
# trees, and its frames carry no symbols to suppress it by: no leak check,
# neither per input nor at exit (ASAN_OPTIONS). The leaks of src_git.c are
# checked by its unit tests and fuzz.diff's replay under the Asan build.
harness_flags() {
    case $1 in
    diff) echo -detect_leaks=0 ;;
    esac
}
harness_asan() {
    case $1 in
    diff) echo "${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" ;;
    *) echo "${ASAN_OPTIONS:-}" ;;
    esac
}

if [ "${BH_FUZZ_NO_BUILD:-0}" != 1 ]; then
    targets=()
    for h in "${harnesses[@]}"; do targets+=("fuzz_${h}_lf"); done
    CC=clang cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBH_FUZZ=ON \
        >/dev/null || exit 2
    cmake --build "$build" -j2 --target "${targets[@]}" >"$build/fuzz-build.log" 2>&1 || {
        grep -E 'error|warning' "$build/fuzz-build.log" >&2
        echo "run.sh: the fuzz build failed (log: $build/fuzz-build.log)" >&2
        exit 2
    }
fi

mkdir -p "$here/crashes"
status=0
printf '%-16s %8s %12s %8s %8s %8s %7s %9s %s\n' harness seconds execs exec/s cov ft files bytes result
for h in "${harnesses[@]}"; do
    bin=$build/fuzz_${h}_lf
    corpus=$here/corpus/$h
    work=$build/fuzz-work/$h
    log=$build/fuzz-$h.log
    [ -x "$bin" ] || { echo "run.sh: no harness $bin" >&2; status=2; continue; }
    mkdir -p "$corpus" "$work"
    # New inputs land in work/ (the first folder); the corpus is only read.
    # shellcheck disable=SC2046 # harness_flags gives words or nothing
    ASAN_OPTIONS=$(harness_asan "$h") \
        "$bin" -max_total_time="$secs" -max_len="$(max_len "$h")" -timeout=10 -rss_limit_mb=2048 \
        $(harness_flags "$h") -print_final_stats=1 -artifact_prefix="$here/crashes/$h-" \
        "$work" "$corpus" >"$log" 2>&1
    rc=$?
    result=ok
    if [ $rc -ne 0 ]; then
        result="CRASH (exit $rc, log $log)"
        status=1
    fi
    # Minimises the corpus on every run: the hand-written seeds (named) stay,
    # and of the found inputs (named by their sha1) and the new ones only
    # those reaching an edge the rest miss come back (edges, not hit counts,
    # so that the corpus stays at a few hundred files).
    pool=$build/fuzz-pool/$h
    rm -rf "$pool"
    mkdir -p "$pool"
    find "$corpus" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9a-f]{40}' \
        -exec mv -t "$pool" {} +
    # shellcheck disable=SC2046
    "$bin" -merge=1 -use_counters=0 -max_len="$(max_len "$h")" -timeout=10 $(harness_flags "$h") \
        "$corpus" "$pool" "$work" >"$log.merge" 2>&1 || {
        cp -n "$pool"/* "$corpus"/ 2>/dev/null
        status=1
        result="$result, merge failed"
    }
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    covline=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$covline")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$covline")
    files=$(find "$corpus" -type f | wc -l)
    bytes=$(du -sb "$corpus" | cut -f1)
    printf '%-16s %8s %12s %8s %8s %8s %7s %9s %s\n' "$h" "$secs" "${execs:-?}" "${rate:-?}" \
        "${cov:-?}" "${ft:-?}" "$files" "$bytes" "$result"
done
exit $status
