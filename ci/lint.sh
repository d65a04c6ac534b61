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

# 5. One way out: the gate (runner/egress/) is the only module that can hand bytes to
#    the network, so the network module and libcurl stay behind it.
rule only-net-calls-curl "only runner/net/ calls libcurl (curl_*, <curl/curl.h>): a transfer started anywhere else would leave without the gate's decision, audit and address pin" < <(
  product | xargs -0 grep -nE '\bcurl_[a-z_]+|#include <curl/' | grep -v '^runner/net/'
)
rule net-behind-the-gate "net/net.h is included (and bh_net linked) only by runner/net/ and runner/egress/: everything else waits for the network through egr_step, so that nothing reaches it past the gate" < <(
  product | xargs -0 grep -nE '#include "net/' | grep -vE '^runner/(net|egress)/'
  find runner stages -name CMakeLists.txt -print0 | sort -z | xargs -0 grep -nE '\bbh_net\b' |
    grep -vE '^runner/(net|egress)/'
)

# 6. One layout for every C file, so that a diff shows only what changed. The tree
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
