#!/usr/bin/env bash
# Gate: run the reference service (examples/refapp, the README's run
# command) on loopback with a fresh data directory, then
#   1. scan it with testssl.sh (internal/testssl's TestScanTarget, the same
#      policy as the tlsconfig gate: no protocol below TLS 1.3, HSTS of at
#      least a year, no MEDIUM+ finding beyond the development CA's);
#   2. run `tomkit check` against it with every input it takes (the audit
#      log too, so that the checks find their own requests in it: access
#      logging, pseudonymized client addresses, alerts on bursts of
#      authentication failures and of requests over the rate limit), and
#      fail on any failed check. Partial and
#      not-covered clauses are printed, not failed. The evidence report
#      (report.md, report.json, junit.xml) is written to
#      $TOMKIT_EVIDENCE_DIR (default: a temporary directory, printed).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v testssl >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq testssl.sh >/dev/null
fi
command -v jq >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null; }

tmp=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/refapp" ./examples/refapp
go build -o "$tmp/tomkit" ./cmd/tomkit
data="$tmp/data"
"$tmp/refapp" -data "$data" -addr 127.0.0.1:0 -http-addr 127.0.0.1:0 -metrics-addr 127.0.0.1:0 -traces off >"$tmp/out" 2>"$tmp/err" &
pid=$!

url=""
for _ in $(seq 300); do
  grep -q '^refapp: ready$' "$tmp/out" && url=$(sed -n 's|^refapp: listening on \(https://[^ ]*\)$|\1|p' "$tmp/out")
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "refapp exited:"; cat "$tmp/err"; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "refapp did not start"; cat "$tmp/err"; exit 1; }
port=${url##*:}
metrics=$(sed -n 's|^refapp: metrics on \(http://[^ ]*\)$|\1|p' "$tmp/out")
echo "refapp at $url"

echo "--- testssl.sh scan of 127.0.0.1:$port"
TOMKIT_REQUIRE_TESTSSL=1 TOMKIT_TESTSSL_TARGET="127.0.0.1:$port" \
  go test -count=1 -run '^TestScanTarget$' -v ./internal/testssl/

token() { jq -r ".[] | select(.subject == \"$1\") | .token" "$data/demo-tokens.json"; }
evidence=${TOMKIT_EVIDENCE_DIR:-$tmp/evidence}
echo "--- tomkit check (evidence in $evidence)"
set +e
"$tmp/tomkit" check \
  --url "$url" --cacert "$data/ca.pem" \
  --token "$(token alice)" --tenant acme --other-tenant kanzlei-mueller \
  --store-dir "$data/documents" \
  --s203-token "$(token lena)" --s203-tenant kanzlei-mueller --eu-model mistral-large-eu \
  --audit-log "$data/audit" --audit-key "$data/audit.pub" \
  --policy "$data/policy.csv" \
  --metrics "$metrics" \
  --out "$evidence"
code=$?
set -e
grep -E '^- (Clauses|Verdict)' "$evidence/report.md"
# The report must carry the four statuses, and a clause may pass only with
# every part passed.
jq -e '[.clauses[] | select(.status == "pass") | .parts[] | select(.status != "pass")] | length == 0' "$evidence/report.json" >/dev/null \
  || { echo "report.json: a passing clause has a part that did not pass"; exit 1; }
jq -e '.summary | has("pass") and has("partial") and has("fail") and has("not_covered")' "$evidence/report.json" >/dev/null \
  || { echo "report.json: no four-status summary"; exit 1; }
exit $code
