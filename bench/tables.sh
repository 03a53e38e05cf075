#!/bin/sh
# Every row of docs/benchmarks.md's tables for issue 7, one JSON report each in $OUT.
# Run on a quiet machine (nothing else busy: each report's other_load_cores says if it was).
#   sh bench/tables.sh [OUT] [REPEATS]
set -eu
OUT=${1:-bench-results}
REPEATS=${2:-1}
BENCH=".venv/bin/pairline bench"
# Calls of 20–30 s: with 5,000 users about 200 joins/s, the rate the targets are set at.
SLOW="--talk-min 20 --talk-max 30 --warmup 25 --duration 30"
mkdir -p "$OUT"
run() {
  name=$1; shift
  i=1
  while [ "$i" -le "$REPEATS" ]; do
    echo "== $name #$i: $*"
    $BENCH "$@" --json "$OUT/$name.$i.json" > "$OUT/$name.$i.txt" 2>&1 || echo "   exit $? (see $OUT/$name.$i.txt)"
    i=$((i + 1))
  done
}
run mem-1k-churn     --users 1000
run mem-5k-slow      --users 5000 $SLOW
run mem-10k-slow     --users 10000 $SLOW
run mem-10k-burst    --users 10000 --burst --duration 30
run mem-10k-idle     --users 10000 --idle --duration 10
run mem-2k-massskip  --users 2000 --mass-skip --rounds 3
run redis1-1k-churn  --users 1000 --redis spawn
run redis1-5k-slow   --users 5000 --redis spawn $SLOW
run redis1-10k-slow  --users 10000 --redis spawn $SLOW
run redis1-10k-burst --users 10000 --redis spawn --burst --duration 60
run redis2-1k-churn  --users 1000 --redis spawn --nodes 2
run redis2-5k-slow   --users 5000 --redis spawn --nodes 2 $SLOW
run redis2-10k-slow  --users 10000 --redis spawn --nodes 2 $SLOW
run redis2-2k-massskip --users 2000 --redis spawn --nodes 2 --mass-skip --rounds 3
run redis2-10k-burst --users 10000 --redis spawn --nodes 2 --burst --duration 60
