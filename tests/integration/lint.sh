#!/usr/bin/env bash
# ci/lint.sh passes on the tree, and fails with each rule's message when a
# violation of that rule is planted in a scratch copy.
source "$BH_SOURCE_DIR/tests/helpers/lib.sh"
cd "$T"

expect "lint passes on the tree" "$BH_SOURCE_DIR/ci/lint.sh" "$BH_SOURCE_DIR"

# plant NAME FILE LINE MESSAGE: a fresh copy with LINE appended to FILE must fail with MESSAGE.
plant() {
  local name=$1 file=$2 line=$3 msg=$4
  rm -rf "$T/copy"
  mkdir -p "$T/copy"
  cp -r "$BH_SOURCE_DIR/runner" "$BH_SOURCE_DIR/stages" "$BH_SOURCE_DIR/.clang-format" "$T/copy/"
  printf '%s\n' "$line" >>"$T/copy/$file"
  set +e
  "$BH_SOURCE_DIR/ci/lint.sh" "$T/copy" >"$T/$name.out" 2>&1
  local rc=$?
  set -e
  expect_eq "$name: lint fails" 1 "$rc"
  expect_contains "$name: with the rule's message" "$T/$name.out" "$msg"
  expect_contains "$name: naming the place" "$T/$name.out" "$file:"
}

plant banned runner/store/cache.c 'static void f(char *d) { strcpy(d, "x"); }' \
  "lint: banned-functions: strcpy, strcat, sprintf, gets and atoi"
plant banned-atoi stages/chat.c 'static int g(const char *s) { return atoi(s); }' \
  "lint: banned-functions:"
plant util runner/util/bh_str.c '#include "policy/policy.h"' \
  "lint: util-is-the-bottom: runner/util/ may include only itself"
plant sources runner/sources/src_files.c '#include "egress/egress.h"' \
  "lint: sources-never-send: runner/sources/ only reads items"
plant sqlite runner/engine/engine.c '#include <sqlite3.h>' \
  "lint: sqlite-in-store: SQLite is touched only by runner/store/"
plant report-stages runner/report/rep_md.c '#include "stages/kinds.h"' \
  "lint: report-never-includes-stages: runner/report/ reads what a run stored"
plant pipeline-policy runner/pipeline/source.c '#include "policy/label.h"' \
  "lint: pipeline-below-policy: runner/pipeline/ only loads and checks the pipeline file"
plant pipeline-engine runner/pipeline/pipeline.h '#include "engine/engine.h"' \
  "lint: pipeline-below-policy:"
plant libgit2 stages/tools.c '#include <git2.h>' \
  "lint: libgit2-in-sources: <git2.h> is included only under runner/sources/"
plant libgit2-private runner/engine/engine.c '#include "sources/src_libgit2.h"' \
  "lint: libgit2-in-sources:"
plant one-nelem runner/pipeline/stages.c '#define NELEM(a) (sizeof(a) / sizeof((a)[0]))' \
  "lint: one-nelem: an array-size macro is defined only in runner/util/"
plant one-nelem-alias stages/kinds.c '#define N_KINDS (sizeof kinds / sizeof kinds[0])' \
  "lint: one-nelem:"
plant one-utf8 runner/report/rep_junit.c 'static int cont(unsigned char c) { return (c & 0xC0) == 0x80; }' \
  "lint: one-utf8: UTF-8 lead and continuation bytes are tested only in runner/util/bh_utf8.c"
plant one-utf8-range stages/tools.c 'static int lead4(unsigned c) { return c >= 0xF0 && c <= 0xF4; }' \
  "lint: one-utf8:"
plant curl stages/chat.c 'static void h(char *s) { curl_free(s); }' \
  "lint: only-net-calls-curl: only runner/net/ calls libcurl"
plant curl-include runner/egress/locality.c '#include <curl/curl.h>' \
  "lint: only-net-calls-curl:"
plant net runner/engine/engine.c '#include "net/net.h"' \
  "lint: net-behind-the-gate: net/net.h is included (and bh_net linked) only by runner/net/ and runner/egress/"
plant net-link runner/cli/CMakeLists.txt 'target_link_libraries(bulkhead PRIVATE bh_net)' \
  "lint: net-behind-the-gate:"
plant format runner/util/bh_str.c 'static int   badly_laid_out (void){return 0;}' \
  "lint: format: the file differs from what clang-format makes of it"

# The helpers keep the tests honest too: a script that asserts nothing fails.
printf '%s\n' 'source "$BH_SOURCE_DIR/tests/helpers/lib.sh"' 'finish' >"$T/empty-test.sh"
set +e
BH_KEEP= bash "$T/empty-test.sh" >"$T/empty-test.out" 2>&1
rc=$?
set -e
expect_eq "a test script with no assertion fails" 1 "$rc"
expect_contains "saying so" "$T/empty-test.out" "no assertion was made"
rm -rf "${TMPDIR:-/tmp}"/bh-empty-test.*
# ...and a script with a check it could not run ends as skipped (77), not passed.
printf '%s\n' 'source "$BH_SOURCE_DIR/tests/helpers/lib.sh"' 'ok "one check ran"' \
  'skip_part "no strace here"' 'finish' >"$T/part-test.sh"
set +e
bash "$T/part-test.sh" >"$T/part-test.out" 2>&1
rc=$?
set -e
expect_eq "a test script with a check that could not run exits 77 (ctest: skipped)" 77 "$rc"
expect_contains "naming what could not run" "$T/part-test.out" "could not run here: no strace here"
finish
