#!/usr/bin/env bash
# Same-hour A/B of whole-cluster throughput: builds take turns on fresh demos, round after
# round, so a machine that speeds up or slows down over the hour (this one does, by a third)
# weighs on every build alike. Only figures from one run of this script compare.
#
#   node/benches/ab.sh ROUNDS DIR [DIR ...]
#
# Each DIR holds one build's release binaries (invctl, flashstock-node, flashstock-gateway,
# loadgen), e.g. a copy of target/release made at the commit under test. Per round and DIR:
# `invctl demo` on the default ports, then W1 (loadgen flash-sale), W2 at 256 clients, W3,
# and batches of 1,000 on a hot SKU and on 10,000 SKUs (loadgen sustained), with the CPU each
# process spent per 1,000 orders in W2 (from /proc, clock ticks). Prints every run, then the
# median per build. Run it on a quiet machine: no build or test alongside.
#
# The builds' order turns around every round (A B, then B A, ...): with a fixed order one
# build always ran right after the other, and in two sessions its batches came out lower in
# every round but the first while, run alone, the builds did not differ. Each run's demo
# data is deleted once it stops, so runs do not pile up gigabytes of logs on the disk.
set -euo pipefail

if [ "$#" -lt 2 ]; then
  sed -n '6,13p' "$0" | cut -c3- >&2
  exit 2
fi
rounds=$1
shift
seconds=${SECONDS_PER_RUN:-8}
ms_per_tick=$((1000 / $(getconf CLK_TCK)))
results=$(mktemp)
trap 'rm -f "$results"' EXIT

stop_demo() {
  pkill -9 -f "$1/(flashstock-node|flashstock-gateway|invctl)" 2>/dev/null || true
  sleep 1
}

# Summed utime+stime, in clock ticks, of the processes whose command line matches $1.
cpu_ticks() {
  local total=0 pid
  for pid in $(pgrep -f "$1"); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

wait_for_gateway() {
  for _ in $(seq 1 120); do
    curl -fs -o /dev/null http://127.0.0.1:8080/readyz 2>/dev/null && return 0
    sleep 0.5
  done
  echo "the gateway of $1 never answered" >&2
  return 1
}

record() { echo "$1 $2 $3" | tee -a "$results"; }

# The first number on the line of loadgen's report that starts with $1 (commas dropped).
figure() { grep -m1 "^$1" | tr -d ',' | grep -oE '[0-9]+(\.[0-9]+)?' | head -1; }

run_build() {
  local dir label
  dir=$(cd "$1" && pwd)
  label=$(basename "$dir")
  stop_demo "$dir"
  local demo_log=/tmp/ab-demo-"$label".log
  "$dir/invctl" demo >"$demo_log" 2>&1 &
  disown
  wait_for_gateway "$label"
  local lg="$dir/loadgen"
  record "$label" w1_seconds "$("$lg" flash-sale --stock 10 --buyers 10000 2>/dev/null |
    figure 'wall time' | awk '{printf "%.3f", $1 / 1000}')"

  local node_re="$dir/flashstock-node" gw_re="$dir/flashstock-gateway"
  local n0 g0 out orders
  n0=$(cpu_ticks "$node_re")
  g0=$(cpu_ticks "$gw_re")
  out=$("$lg" sustained --clients 256 --seconds "$seconds" 2>/dev/null)
  orders=$(echo "$out" | figure 'orders/s')
  record "$label" w2_256_orders_per_s "$orders"
  # per 1,000 orders: all three nodes together, and the gateway
  record "$label" w2_nodes_cpu_ms_per_1000 "$(awk -v t="$(($(cpu_ticks "$node_re") - n0))" \
    -v ms="$ms_per_tick" -v o="$orders" -v s="$seconds" 'BEGIN{printf "%.1f", t * ms / (o * s / 1000)}')"
  record "$label" w2_gateway_cpu_ms_per_1000 "$(awk -v t="$(($(cpu_ticks "$gw_re") - g0))" \
    -v ms="$ms_per_tick" -v o="$orders" -v s="$seconds" 'BEGIN{printf "%.1f", t * ms / (o * s / 1000)}')"

  record "$label" w3_orders_per_s "$("$lg" sustained --clients 256 --skus 10000 \
    --seconds "$seconds" 2>/dev/null | figure 'orders/s')"
  record "$label" batch_hot_orders_per_s "$("$lg" sustained --batch 1000 --clients 4 \
    --connections 4 --seconds "$seconds" 2>/dev/null | figure 'orders/s')"
  record "$label" batch_10k_orders_per_s "$("$lg" sustained --batch 1000 --clients 4 \
    --connections 4 --skus 10000 --seconds "$seconds" 2>/dev/null | figure 'orders/s')"
  stop_demo "$dir"
  remove_demo_data "$demo_log"
}

# The data directory the demo named on its first line (`... data in DIR`), killed with -9
# before it could remove it itself.
remove_demo_data() {
  local data
  data=$(head -1 "$1" | grep -oE 'data in /[^ ]*flashstock-demo-[A-Za-z0-9]+$' | cut -c9-)
  if [ -n "$data" ]; then rm -rf "$data"; fi
}

for round in $(seq 1 "$rounds"); do
  echo "== round $round" >&2
  if [ $((round % 2)) -eq 1 ]; then order=("$@"); else
    order=()
    for ((i = $#; i >= 1; i--)); do order+=("${!i}"); done
  fi
  for dir in "${order[@]}"; do
    run_build "$dir"
  done
done

echo
echo "medians of $rounds rounds (build, figure, median, runs):"
sort -k1,1 -k2,2 -s "$results" | awk '
  function flush() {
    if (n == 0) return
    # the runs, sorted, give the median
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    runs = v[1]; for (i = 2; i <= n; i++) runs = runs " " v[i]
    printf "%-20s %-28s %12s   (%s)\n", key1, key2, (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2), runs
    n = 0
  }
  { if ($1 != key1 || $2 != key2) { flush(); key1 = $1; key2 = $2 } v[++n] = $3 + 0 }
  END { flush() }'
