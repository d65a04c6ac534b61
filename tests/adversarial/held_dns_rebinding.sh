#!/usr/bin/env bash
# Held: DNS rebinding. The local endpoint is http://box.example.test:PORT; the
# name resolves to 127.0.0.1 the FIRST time it is looked up (when the gate
# verifies the endpoint local) and to the public 192.0.2.10 every time after.
# What it resolves to depends on the order of lookups, not on timing: the run
# has a user, network and mount namespace of its own, whose /etc/resolv.conf
# names a DNS server in that namespace (held_dns_rebinding-dns.py) that answers
# so, with TTL 0. A client that resolved the name again for its connections
# (curl without the pin, a second verification in the gate) would get
# 192.0.2.10. The run must stay pinned to the address it verified: under
# strace every TCP connect() goes to 127.0.0.1, none to 192.0.2.x; every diff
# reaches the local server; exit 0; audit verifies. (A gate that verified again
# and then refused would also keep the data in, but fails this case on its exit
# code: pinning is the documented behaviour.) The DNS server logs every answer:
# exactly one lookup (the gate's) shows that no connection resolved the name
# again. Limit: the fake server keeps its connection alive, so the run makes a
# single TCP connection; the case proves that connection was made to the
# verified address without a second lookup, not that later reconnections are.
# Checked when written: with the pin removed (no CURLOPT_RESOLVE in
# runner/net/net.c) this case fails: curl looks the name up again, gets
# 192.0.2.10 and tries to connect there.
source "$BH_SOURCE_DIR/tests/adversarial/lib.sh"
cd "$T"

if ! unshare -rnm bash -c 'true' 2>/dev/null; then echo "# SKIP: no user/network/mount namespace"; exit 77; fi
command -v strace >/dev/null || { echo "# SKIP: strace is needed to see connect() targets"; exit 77; }
command -v python3 >/dev/null || { echo "# SKIP: python3 is needed for the rebinding DNS server"; exit 77; }

make_repo "$T/repo" --prs 3
printf '127.0.0.1 localhost\n' >"$T/hosts"
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$T/resolv.conf"
printf 'hosts: files dns\n' >"$T/nsswitch.conf"

# Everything that needs the namespace's loopback runs inside it: the DNS
# server and the local fake server, then bulkhead under strace.
cat >"$T/inner.sh" <<'INNER'
set -u
ip link set lo up
for f in hosts resolv.conf nsswitch.conf; do mount --bind "$T/$f" "/etc/$f"; done
python3 "$ADV/held_dns_rebinding-dns.py" box.example.test 127.0.0.1 192.0.2.10 "$T/dns.log" "$T/dns.ready" \
  2>"$T/dns.err" &
dns=$!
"$FAKE" --port 0 --port-file "$T/local.port" --log "$T/local.log" --name local >/dev/null 2>"$T/local.err" &
fake=$!
for i in $(seq 1 200); do [ -s "$T/local.port" ] && [ -e "$T/dns.ready" ] && break; sleep 0.05; done
ADV_LOCAL_URL="http://box.example.test:$(cat "$T/local.port")" \
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
  strace -f -qq -e trace=connect -o "$T/run.strace" \
  "$BULKHEAD" run "$P" --repo "$T/repo" --state "$T/s" >"$T/run.out" 2>"$T/run.err"
echo $? >"$T/run.rc"
kill "$fake" "$dns"
wait 2>/dev/null
INNER
_bh_last=run
T=$T ADV=$ADV FAKE=$FAKE BULKHEAD=$BULKHEAD P="$ADV/pipelines/held_dns_rebinding.json" \
  unshare -rnm bash "$T/inner.sh" >"$T/inner.out" 2>&1 || true
rc=$(cat "$T/run.rc" 2>/dev/null || echo none)
local_port=$(cat "$T/local.port")

expect_rc "the run succeeds against the name it verified local" 0
expect_eq "the gate's lookup got the loopback answer" 127.0.0.1 "$(head -1 "$T/dns.log" 2>/dev/null)"
expect_eq "no TCP connection to the rebound 192.0.2.x was ever tried" 0 \
  "$(grep 'inet_addr("192\.0\.2\.' "$T/run.strace" 2>/dev/null | grep -c -v 'htons(0)' || true)"
expect_eq "every TCP connect went to the pinned 127.0.0.1:$local_port (or to the DNS server)" 0 \
  "$(grep 'sa_family=AF_INET,' "$T/run.strace" | grep -v -e 'htons(0)' -e 'htons(53)' |
     grep -c -v "htons($local_port), sin_addr=inet_addr(\"127.0.0.1\")" || true)"
seen=0
while read -r c; do grep -q -F "$c" "$T/local.log" && seen=$((seen + 1)); done <"$T/repo.canaries"
expect_eq "every diff reached the local server" 3 "$seen"
expect_eq "the name was looked up once: the connection used the pinned answer, not a new lookup" 1 \
  "$(wc -l <"$T/dns.log")"
audit_says "rebinding" "$T/s" 0
finish
