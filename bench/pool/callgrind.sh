#!/usr/bin/env bash
# Instructions per Alloc+Free pair of the chunk pool, counted by callgrind
# (the CI-stable figure of issue 11; goal <= 30).
#   bench/pool/callgrind.sh [BIN_DIR]   (default build/release/bin)
# Runs devmem_pool_pairs with N and 2N pairs and prints
# (Ir(2N) - Ir(N)) / N, so start-up costs cancel out.
set -euo pipefail
bin="${1:-build/release/bin}/devmem_pool_pairs"
[[ -x "$bin" ]] || { echo "no $bin: build target devmem_pool_pairs" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind not installed (apt-get install valgrind)" >&2; exit 1; }
n=200000
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
ir() {
  valgrind --tool=callgrind --callgrind-out-file="$tmp/out.$1" "$bin" "$1" \
    2>"$tmp/log.$1"
  sed -n 's/^summary: \([0-9]*\).*/\1/p' "$tmp/out.$1"
}
a="$(ir "$n")"
b="$(ir "$((2 * n))")"
awk -v a="$a" -v b="$b" -v n="$n" \
  'BEGIN { printf "instructions per alloc+free pair: %.1f (loop included)\n", (b - a) / n }'
