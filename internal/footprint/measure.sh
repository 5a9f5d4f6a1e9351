#!/usr/bin/env bash
# Prints the footprint table of docs/ARCHITECTURE.md: for a program that
# imports one tomkit package (blank import, empty main), the number of
# modules it links besides tomkit and its stripped binary size.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
prog=.footprint-tmp # inside the module, so that its imports resolve; go ./... skips dot dirs
trap 'rm -rf "$tmp" "$prog"' EXIT
mkdir -p "$prog"
echo "| import | modules | stripped binary |"
echo "|---|---|---|"
for set in "audit" "tlsconfig" "crypto/envelope crypto/kms" "rbac" "retention" "retention/fsstore" "section203" "httpguard" "tomtest" \
           "audit/pglog" "rbac/pgstore" "crypto/kms/pgstore" "retention/pgstore" "retention/blobstore"; do
  [ -d "${set%% *}" ] || continue
  {
    echo "package main"
    for p in $set; do echo "import _ \"github.com/tomkit/tomkit/$p\""; done
    echo "func main() {}"
  } >"$prog/main.go"
  mods=$(go list -deps -f '{{with .Module}}{{.Path}}{{end}}' "./$prog" | sort -u | grep -vc '^github.com/tomkit/tomkit$' || true)
  go build -trimpath -ldflags='-s -w' -o "$tmp/bin" "./$prog"
  size=$(stat -c %s "$tmp/bin")
  printf '| %s | %d | %.1f MB |\n' "$(echo $set | sed 's/ / + /g')" "$mods" "$(echo "$size / 1000000" | bc -l)"
done
