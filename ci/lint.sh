#!/usr/bin/env bash
# ci/lint.sh — the rules that keep the architecture what the folder names say.
# Each rule prints why it exists when it fails. Run by ci/test.sh; a test
# (tests/integration/lint.sh) plants a violation of each rule in a scratch copy
# and sees this script fail with that rule's message.
#
# Usage: ci/lint.sh [ROOT]   (default: the repository this script is in)
set -uo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2
failed=0

# rule NAME WHY < <(search): report the lines of the search (file:line: text) as
# violations. Fed by process substitution, not a pipe, so that failed is set here.
rule() {
  local name=$1 why=$2 hits
  hits=$(cat)
  if [ -n "$hits" ]; then
    echo "lint: $name: $why"
    printf '%s\n' "$hits" | sed 's/^/  /' | head -20
    failed=1
  fi
}

product() { # the product's C sources and headers (not the tests, not the fixtures)
  find runner stages -name '*.[ch]' -print0 | sort -z
}

# 1. Unbounded or unchecked C library calls: every buffer that grows from input has a
#    cap, every number from input is range-checked.
rule banned-functions "strcpy, strcat, sprintf, gets and atoi neither bound a buffer nor report a bad number: use bh_buf, snprintf/bh_str_put, strtol with its end pointer" < <(
  product | xargs -0 grep -nE '\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|atoll)[[:space:]]*\(' |
    grep -vE '\b(snprintf|vsnprintf)[[:space:]]*\('
)

# 2. util/ is the bottom of the dependency order: it includes no other module, so
#    that every module may use it without a cycle.
rule util-is-the-bottom "runner/util/ may include only itself: every other module depends on it, so an include from it makes a cycle" < <(
  find runner/util -name '*.[ch]' -print0 | xargs -0 grep -nE '#include "[a-z_]+/' |
    grep -vE '#include "util/'
)

# 3. sources/ reads repositories and folders; it never decides or sends anything.
rule sources-never-send "runner/sources/ only reads items: a source that could reach the gate or the network could send an item before it is labelled" < <(
  find runner/sources -name '*.[ch]' -print0 | xargs -0 grep -nE '#include "(egress|net|engine|stages)/'
)

# 4. A dependency's handles stay inside its wrapper: SQLite in store/.
rule sqlite-in-store "SQLite is touched only by runner/store/ (one thread, one wrapper, its errors translated there)" < <(
  product | xargs -0 grep -nE '#include <sqlite3\.h>' | grep -v '^runner/store/'
)

# 5. The reports read stored runs; the findings model they share with the stages
#    lives in findings/, so a report never depends on how a stage kind runs.
rule report-never-includes-stages "runner/report/ reads what a run stored: what it shares with the stages (the findings model) lives in runner/findings/, and a report that includes stages/ would pull the engine and the providers into every report" < <(
  find runner/report -name '*.[ch]' -print0 | xargs -0 grep -nE '#include "stages/'
)

# 6. The pipeline loader sits below policy and the engine: it only reads and checks
#    the file (the detectors it names come from detect/, below it).
rule pipeline-below-policy "runner/pipeline/ only loads and checks the pipeline file: policy/ and engine/ are built on it, so an include from it into either makes a cycle (the detectors are in runner/detect/)" < <(
  find runner/pipeline -name '*.[ch]' -print0 | xargs -0 grep -nE '#include "(policy|engine)/'
)

# 7. libgit2 is wrapped once: its handles, its error state and its init/shutdown
#    pairing stay inside the repository readers.
rule libgit2-in-sources "<git2.h> is included only under runner/sources/: every read of a repository (items, forge lists, the agent tools' files) goes through runner/sources/ (src_repo.h for the agent tools), with one libgit2 error helper (src_libgit2.h, private to sources/)" < <(
  product | xargs -0 grep -nE '#include (<git2(\.h|/)|"sources/src_libgit2\.h")' | grep -v '^runner/sources/'
)

# 8. One of each helper: an array-size macro is defined once, in util/. A copy
#    per file drifts (one loses its parentheses, one is used on a pointer) and
#    hides that the idea exists already.
rule one-nelem "an array-size macro is defined only in runner/util/ (BH_NELEM in util/bh_util.h): use it instead of a copy of your own" < <(
  find runner stages tests fixtures -name '*.[ch]' -not -path 'runner/util/*' -print0 2>/dev/null | sort -z |
    xargs -0 -r grep -nE '^[[:space:]]*#[[:space:]]*define[[:space:]].*sizeof[^/]*/[[:space:]]*\(?[[:space:]]*sizeof'
)

# 9. One UTF-8 decoder: copies of the lead-byte tests disagreed (the JUnit
#    writer's accepted overlong forms and surrogates that the others refused),
#    so only runner/util/bh_utf8.c looks at lead and continuation bytes. The
#    pattern is a mask compared with a hex byte ((c & 0xC0) != 0x80), a range
#    bound of a lead byte (>= 0xC2, <= 0xF4) or an encoder's lead (0xE0 | ...);
#    a mask compared with a number that is no byte pattern ((a & 0xf0) == 16
#    for 172.16/12) is not one.
rule one-utf8 "UTF-8 lead and continuation bytes are tested only in runner/util/bh_utf8.c: use bh_utf8_seq, _valid, _invalid_at, _lossy, _cont, _count or _put" < <(
  product | xargs -0 grep -nE '&[[:space:]]*0x[cCeEfF][0-8][[:space:]]*\)[[:space:]]*[!=]=[[:space:]]*0x|[<>]=?[[:space:]]*0x([cC]2|[dD][fF]|[eE]0|[eE][fF]|[fF]0|[fF]4)\b|0x[cCeEfF]0[[:space:]]*\|' |
    grep -v '^runner/util/'
)

# 10. One way out: the gate (runner/egress/) is the only module that can hand bytes to
#    the network, so the network module and libcurl stay behind it.
rule only-net-calls-curl "only runner/net/ calls libcurl (curl_*, <curl/curl.h>): a transfer started anywhere else would leave without the gate's decision, audit and address pin" < <(
  product | xargs -0 grep -nE '\bcurl_[a-z_]+|#include <curl/' | grep -v '^runner/net/'
)
rule net-behind-the-gate "net/net.h is included (and bh_net linked) only by runner/net/ and runner/egress/: everything else waits for the network through egr_step, so that nothing reaches it past the gate" < <(
  product | xargs -0 grep -nE '#include "net/' | grep -vE '^runner/(net|egress)/'
  find runner stages -name CMakeLists.txt -print0 | sort -z | xargs -0 grep -nE '\bbh_net\b' |
    grep -vE '^runner/(net|egress)/'
)

# 11. One layout for every C file, so that a diff shows only what changed. The tree
#    was formatted once; this keeps it so (clang-format from ci/bootstrap.sh).
if ! command -v clang-format >/dev/null 2>&1; then
  echo "lint: format: clang-format is missing: run ci/bootstrap.sh (without it the layout rule cannot be checked, and lint does not pass on a guess)"
  failed=1
elif [ ! -f .clang-format ]; then
  echo "lint: format: no .clang-format at the root of $root"
  failed=1
else
  rule format "the file differs from what clang-format makes of it (.clang-format at the root): run clang-format -i on it" < <(
    find runner stages tests fixtures -name '*.[ch]' -print0 2>/dev/null | sort -z |
      xargs -0 -r clang-format --style=file --dry-run 2>&1 | grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error)' |
      sed -E 's/^([^:]+:[0-9]+):[0-9]+: (warning|error): .*/\1: not formatted/' | sort -u -t: -k1,1
  )
fi

exit "$failed"
