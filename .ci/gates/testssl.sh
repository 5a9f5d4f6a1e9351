#!/usr/bin/env bash
# Gate: scan the runnable HTTPS example (examples/hellotls, the README's run
# command) with testssl.sh and fail on any finding of MEDIUM or above other
# than the ones its self-signed development certificate causes (see
# internal/testssl). tlsconfig's own TestTestsslScan scans a bare
# tlsconfig.Server during `go test`; this gate scans the shipped program.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v testssl >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq testssl.sh >/dev/null
fi

tmp=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/hellotls" ./examples/hellotls
"$tmp/hellotls" -addr 127.0.0.1:0 -dir "$tmp/data" >"$tmp/out" 2>"$tmp/err" &
pid=$!

addr=""
for _ in $(seq 100); do
  addr=$(sed -n 's|^serving https://\([^/]*\)/$|\1|p' "$tmp/out")
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "hellotls exited:"; cat "$tmp/err"; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "hellotls did not start"; cat "$tmp/err"; exit 1; }
echo "scanning examples/hellotls at $addr"

TOMKIT_REQUIRE_TESTSSL=1 TOMKIT_TESTSSL_TARGET="$addr" \
  go test -count=1 -run '^TestScanTarget$' -v ./internal/testssl/
