# tests/adversarial/lib_stub_route.sh — the body of stub_on_openai_route.sh and
# stub_on_anthropic_route.sh (sourced, not run): the same attack on two routes.
# The caller sources lib.sh and sets DIALECT (openai, anthropic) and ROUTE.
PIPE="$ADV/pipelines/stub_on_${DIALECT}_route.json"
make_repo "$T/repo" --prs 2
start_fake cloud
export ADV_CLOUD_URL=$cloud_URL
route_models() { jq -r --arg r "$ROUTE" 'select(.path == $r) | .body | fromjson | .model' "$T/$1.log" | sort -u | tr '\n' ' ' | sed 's/ $//'; }

# --- a stub that /api/tags shows ------------------------------------------------
start_fake tags --server-version 0.17.0 --models coder:7b --remote coder:7b
export ADV_LOCAL_URL=$tags_URL
bh_run check check "$PIPE" --online --state "$T/check.state"
expect_rc "tags: check --online refuses the $DIALECT stage on the stub" 3
expect_contains "tags: check --online surveyed the $DIALECT endpoint" "$T/check.out" \
  "model coder:7b: a cloud stub forwarding to https://ollama.com:443 (seen in /api/tags) — refused"
bh_run tags run "$PIPE" --repo "$T/repo" --state "$T/tags.state"
expect_rc "tags: the run refuses the stage (exit 3)" 3
expect_contains "tags: the refusal names the stub" "$T/tags.err" \
  "a cloud stub that the server forwards to 'https://ollama.com:443'"
no_canary_at "$T/tags.log" "$T/repo.canaries" "tags"
expect_eq "tags: nothing went on $ROUTE" "" "$(route_models tags)"
audit_has "tags: the refusal is audited" "$T/tags.state" \
  "decision = 'refuse' AND stage = 'review' AND reason LIKE '%cloud stub%'"
audit_says "tags" "$T/tags.state" 0

# --- a stub hidden from the lists: the probe over /api/chat shows it -------------
start_fake hidden --server-version 0.17.0 --models coder:7b --remote coder:7b --hide-stubs
export ADV_LOCAL_URL=$hidden_URL
bh_run hidden run "$PIPE" --repo "$T/repo" --state "$T/hidden.state"
expect_rc "hidden: the run refuses the stage (exit 3)" 3
no_canary_at "$T/hidden.log" "$T/repo.canaries" "hidden"
expect_eq "hidden: nothing went on $ROUTE" "" "$(route_models hidden)"
expect_eq "hidden: the probe went over /api/chat with its fixed text" "Reply with OK." \
  "$(jq -r 'select(.path == "/api/chat") | .body | fromjson | .messages[-1].content' "$T/hidden.log" | sort -u)"
audit_says "hidden" "$T/hidden.state" 0

# --- a server that honours ":local": the route gets NAME:local ---------------------------
start_fake new --server-version 0.18.1 --models coder:7b
export ADV_LOCAL_URL=$new_URL
bh_run new run "$PIPE" --repo "$T/repo" --state "$T/new.state"
expect_rc "new server, a local model: the run succeeds" 0
expect_eq "new server: the $DIALECT route names the model NAME:local" "coder:7b:local" "$(route_models new)"
expect_eq "new server: no probe is needed (the server refuses stubs itself)" "" \
  "$(jq -r 'select(.path == "/api/chat") | .path' "$T/new.log")"

no_canary_at "$T/cloud.log" "$T/repo.canaries" "every case"
finish
