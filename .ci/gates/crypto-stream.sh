#!/usr/bin/env bash
# crypto-stream: encrypt and then decrypt 1 GiB through the tomkit CLI and
# check
#   - the round trip is exact (sha256 of input and output);
#   - peak RSS of `tomkit encrypt` and of `tomkit decrypt` is <= 32 MiB
#     (/usr/bin/time -v);
#   - throughput against the same pipeline through a standard-library
#     AES-256-GCM program with the same 64 KiB framing (target >= 0.7x).
# The measured runs decrypt into a regular file (as does the baseline),
# where decrypt writes as it goes and truncates back on failure; the file
# is on tmpfs when it has room, and each side runs twice, best run counts. A second
# run decrypts into a pipe (`| sha256sum`), where decrypt spills past
# 2 MiB to an encrypted temporary file and writes only after the whole
# stream has authenticated: its round trip and RSS are checked too, its
# throughput is informational.
# RSS and correctness fail the gate. Throughput is reported, and fails the
# gate only with TOMKIT_STRICT_THROUGHPUT=1 (main ratio only): CI machines
# are shared and too noisy for a hard timing assertion.
set -euo pipefail
cd "$(dirname "$0")/../.."

SIZE=$((1 << 30))
MAX_RSS_KB=$((32 * 1024))

if [ ! -x /usr/bin/time ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
command -v openssl >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

go build -o "$work/tomkit" ./cmd/tomkit

# The baseline: standard-library AES-256-GCM over 64 KiB frames, stdin to
# stdout, with the same buffering as the CLI.
mkdir -p "$work/baseline"
cat >"$work/baseline/main.go" <<'GO'
package main

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"io"
	"os"
)

func main() {
	b, _ := aes.NewCipher(make([]byte, 32))
	g, _ := cipher.NewGCM(b)
	in := bufio.NewReaderSize(os.Stdin, 256<<10)
	out := bufio.NewWriterSize(os.Stdout, 256<<10)
	seg := 64 << 10
	if os.Args[1] == "open" {
		seg += 16
	}
	buf := make([]byte, seg)
	dst := make([]byte, 0, seg+16)
	nonce := make([]byte, 12)
	for i := uint32(0); ; i++ {
		n, err := io.ReadFull(in, buf)
		if n == 0 {
			break
		}
		binary.BigEndian.PutUint32(nonce[7:], i)
		if os.Args[1] == "open" {
			if dst, err = g.Open(dst[:0], nonce, buf[:n], nil); err != nil {
				os.Exit(1)
			}
		} else {
			dst = g.Seal(dst[:0], nonce, buf[:n], nil)
		}
		out.Write(dst)
		if err != nil {
			break
		}
	}
	out.Flush()
}
GO
(cd "$work/baseline" && GOFLAGS= go mod init baseline >/dev/null 2>&1 && go build -o "$work/std" .)

# A seeded 1 GiB stream: AES-256-CTR of zeros under a fixed key, so no
# 1 GiB file is written.
gen() {
  # openssl dies of SIGPIPE when head has had enough; that is expected.
  { openssl enc -aes-256-ctr -K "$(printf '%064x' 203)" -iv "$(printf '%032x' 0)" -in /dev/zero 2>/dev/null || true; } | head -c "$SIZE"
}

export TOMKIT_MASTER_KEY=$(head -c 32 /dev/urandom | base64)
"$work/tomkit" keys init --keyset "$work/keyring.json" --audit-log "$work/audit.jsonl" >/dev/null

want=$(gen | sha256sum | cut -d' ' -f1)

now() { date +%s.%N; }
ks=(--keyset "$work/keyring.json" --audit-log "$work/audit.jsonl" --context object=gate)

rss() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }
calc() { awk "BEGIN { print $1 }"; }
maxi() { if [ "$1" -gt "$2" ]; then echo "$1"; else echo "$2"; fi; }
faster() { calc "($1 < $2) ? $1 : $2"; }

# Measured: decrypt into a regular file; the hash is taken after timing.
# The files go to tmpfs when it has room, so that the disk writeback of
# one run cannot slow the next; each side runs twice, alternating with
# the other, and its faster run counts.
outdir="$work"
if [ -d /dev/shm ] && [ -w /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR==2 {print $4}')" -gt $((3 * 1024 * 1024)) ]; then
  outdir=$(mktemp -d -p /dev/shm tomkit-gate.XXXXXX)
  trap 'rm -rf "$work" "$outdir"' EXIT
fi
round_trip_ok=1 enc_rss=0 dec_rss=0 tomkit_s=999999 std_s=999999
tomkit_run() {
  local t0 t1 got
  t0=$(now)
  gen \
    | /usr/bin/time -v -o "$work/enc.time" "$work/tomkit" encrypt "${ks[@]}" \
    | /usr/bin/time -v -o "$work/dec.time" "$work/tomkit" decrypt "${ks[@]}" >"$outdir/out"
  t1=$(now)
  got=$(sha256sum <"$outdir/out" | cut -d' ' -f1)
  rm -f "$outdir/out"
  if [ "$got" != "$want" ]; then
    echo "crypto-stream: FAIL: round trip differs (sha256 $got, want $want)"; round_trip_ok=0
  fi
  enc_rss=$(maxi "$(rss "$work/enc.time")" "$enc_rss")
  dec_rss=$(maxi "$(rss "$work/dec.time")" "$dec_rss")
  tomkit_s=$(faster "$(calc "$t1 - $t0")" "$tomkit_s")
}
std_run() {
  local t0 t1
  t0=$(now)
  gen | "$work/std" seal | "$work/std" open >"$outdir/std.out"
  t1=$(now)
  rm -f "$outdir/std.out"
  std_s=$(faster "$(calc "$t1 - $t0")" "$std_s")
}
std_run; tomkit_run; tomkit_run; std_run

# Informational: decrypt into a pipe, which spills to $work.
t3=$(now)
pipe_got=$(gen \
  | "$work/tomkit" encrypt "${ks[@]}" \
  | /usr/bin/time -v -o "$work/pipe.time" "$work/tomkit" decrypt "${ks[@]}" --spill-dir "$work" \
  | sha256sum | cut -d' ' -f1)
t4=$(now)

pipe_rss=$(rss "$work/pipe.time")
pipe_s=$(calc "$t4 - $t3")
ratio=$(calc "$std_s / $tomkit_s")
pipe_ratio=$(calc "$std_s / $pipe_s")
mibs() { calc "1024 / $1"; }

printf 'crypto-stream: 1 GiB round trip (best of 2 each, into %s): tomkit %.2fs (%.0f MiB/s), stdlib AES-GCM %.2fs (%.0f MiB/s), ratio %.2fx (target >= 0.7x)\n' \
  "$outdir" "$tomkit_s" "$(mibs "$tomkit_s")" "$std_s" "$(mibs "$std_s")" "$ratio"
printf 'crypto-stream: peak RSS encrypt %d KiB, decrypt %d KiB (limit %d KiB)\n' "$enc_rss" "$dec_rss" "$MAX_RSS_KB"
printf 'crypto-stream: pipe path (decrypt | sha256sum, spills): tomkit %.2fs (%.0f MiB/s), ratio %.2fx (informational), peak RSS decrypt %d KiB\n' \
  "$pipe_s" "$(mibs "$pipe_s")" "$pipe_ratio" "$pipe_rss"

fail=0
[ "$round_trip_ok" = 1 ] || fail=1
if [ "$pipe_got" != "$want" ]; then
  echo "crypto-stream: FAIL: pipe-path round trip differs (sha256 $pipe_got, want $want)"; fail=1
fi
if [ "$enc_rss" -gt "$MAX_RSS_KB" ] || [ "$dec_rss" -gt "$MAX_RSS_KB" ] || [ "$pipe_rss" -gt "$MAX_RSS_KB" ]; then
  echo "crypto-stream: FAIL: peak RSS above 32 MiB"; fail=1
fi
if [ "$(calc "($ratio < 0.7) ? 1 : 0")" = 1 ]; then
  if [ "${TOMKIT_STRICT_THROUGHPUT:-0}" = 1 ]; then
    echo "crypto-stream: FAIL: throughput below 0.7x the standard library"; fail=1
  else
    echo "crypto-stream: warning: throughput below 0.7x (not enforced; set TOMKIT_STRICT_THROUGHPUT=1)"
  fi
fi
exit "$fail"
