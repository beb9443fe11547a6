#!/usr/bin/env bash
# profile-engine.sh — a flame graph of the embedded engine's thread under the saga.
#
# Runs `shop bench --saga --orders N` (release build) and, once the load is
# on, samples the engine thread (`dynoxide`, where every store call runs) with
# `perf record --call-graph dwarf` for SECS seconds, then folds the stacks and
# draws them with inferno (cargo install inferno --version 0.12.3 --locked
# --no-default-features --features cli). Needs Debian's linux-perf.
#
# Usage: infra/scripts/profile-engine.sh OUT.svg [ORDERS=4000] [SECS=15] [SHOP=target/release/shop]
set -euo pipefail
out=${1:?usage: profile-engine.sh OUT.svg [ORDERS] [SECS] [SHOP]}
orders=${2:-4000}
secs=${3:-15}
shop=$(realpath "${4:-target/release/shop}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && "$shop" bench --saga --orders "$orders" --json >"$work/bench.json" 2>"$work/bench.err") &
bench=$!
tid=""
for _ in $(seq 1 200); do
  for task in /proc/"$bench"/task/* /proc/[0-9]*/task/*; do
    if [ "$(cat "$task/comm" 2>/dev/null)" = "dynoxide" ]; then tid=${task##*/}; break 2; fi
  done
  sleep 0.1
done
[ -n "$tid" ] || { echo "no dynoxide thread found" >&2; kill "$bench"; exit 1; }
sleep 3 # past the table's creation and the seed, into the load
perf record -F 499 --call-graph dwarf,16384 -t "$tid" -o "$work/perf.data" -- sleep "$secs" >/dev/null 2>&1
perf script -i "$work/perf.data" 2>/dev/null | inferno-collapse-perf >"$work/folded"
inferno-flamegraph --title "engine thread under shop bench --saga ($orders orders, ${secs} s)" <"$work/folded" >"$out"
wait "$bench" || true
echo "samples: $(awk '{s+=$NF} END {print s}' "$work/folded"); $out" >&2
# Where the time goes, inclusive, by what a stack passes through (a stack
# may count in more than one row), and the heaviest frames by self time.
for pattern in 'sqlite3_step' 'sqlite3WalFrames|sqlite3PagerCommitPhaseOne' 'serde_json' 'dynoxide::expressions' 'dynoxide::actions::transact' 'dynoxide::actions::update_item' 'dynoxide::actions::get_item' 'dynoxide::actions::query' 'malloc|free|realloc'; do
  awk -v p="$pattern" '{n=$NF; total+=n; if ($0 ~ p) hit+=n} END {printf "%6.2f%% inclusive  %s\n", 100*hit/total, p}' "$work/folded" >&2
done
awk '{n=$NF; $NF=""; k=split($0, f, ";"); self[f[k]]+=n; total+=n} END {for (x in self) printf "%6.2f%% self  %s\n", 100*self[x]/total, x}' "$work/folded" | sort -rn | head -8 >&2
