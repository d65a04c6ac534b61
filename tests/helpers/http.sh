# tests/helpers/http.sh — raw HTTP requests to a fixture server for the
# fake-llm tests (sourced after lib.sh, which sets $T and the *_URL variables).
STATUS='' CURL_RC=0
# req NAME METHOD PATH [BODY [CURL-ARGS...]]: body in $T/body, headers in $T/hdrs
req() {
  local name=$1 method=$2 path=$3 data=${4-} url_var="${1}_URL"
  shift $(($# < 4 ? $# : 4))
  local args=(-sS -N -X "$method" -o "$T/body" -D "$T/hdrs" -w '%{http_code}' --max-time 30)
  [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
  CURL_RC=0
  rm -f "$T/body" "$T/hdrs"; : >"$T/body"
  STATUS=$(curl "${args[@]}" "$@" "${!url_var}$path" 2>/dev/null) || CURL_RC=$?
}
jqt() { jq -e "$@" "$T/body" >/dev/null 2>&1; }   # jqt FILTER [ARGS]: the body satisfies it
