#!/usr/bin/env bash
# Decode benchmark (issue 2): a JSON LIST of 10,000 Services and a LIST of 10,000 EndpointSlices
# holding 100,000 endpoints, decoded into the store. Each figure is the median of RUNS separate
# processes; beside it, simdjson's own parse of the same bytes (the parser's throughput), measured
# in the same run. Writes its section of bench/RESULTS.md.
#   bench/decode.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
scripts/build.sh release >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
build/decode_bench generate "$work" 10000 10

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

decode_ms=(); rss=(); parse_ms=(); mbps=(); p50=(); p99=()
for ((i = 0; i < runs; i++)); do
  d=$(build/decode_bench decode "$work" | tr "\n" " ")
  p=$(build/decode_bench parse "$work")
  decode_ms+=("$(field decode_ms <<<"$d")"); rss+=("$(field peak_rss_mb <<<"$d")")
  p50+=("$(field change_p50_us <<<"$d")"); p99+=("$(field change_p99_us <<<"$d")")
  parse_ms+=("$(field parse_ms <<<"$p")"); mbps+=("$(field mb_per_s <<<"$p")")
done
echo "$d"
echo "$p"
dm=$(printf '%s\n' "${decode_ms[@]}" | median)
rm_=$(printf '%s\n' "${rss[@]}" | median)
pm=$(printf '%s\n' "${parse_ms[@]}" | median)
mb=$(printf '%s\n' "${mbps[@]}" | median)
c50=$(printf '%s\n' "${p50[@]}" | median)
c99=$(printf '%s\n' "${p99[@]}" | median)
size=$(du -cm "$work"/*.json | tail -1 | cut -f1)
summary="decode+store: ${dm} ms, peak RSS ${rm_} MB (goal < 150 ms, < 120 MB); simdjson parse alone: ${pm} ms (${mb} MB/s) of ${size} MB; parse share $(awk -v a="$pm" -v b="$dm" 'BEGIN{printf "%.0f%%", 100*a/b}')"
echo "$summary"

{
  echo
  echo "## decode: 10,000 Services + 10,000 EndpointSlices (100,000 endpoints), JSON LIST → store"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/model name\s*: //p' /proc/cpuinfo | head -1)"
  echo "- command: \`bench/decode.sh $runs\` (median of $runs processes each)"
  echo "- result: $summary"
  echo "- decode runs (ms): ${decode_ms[*]}; parse runs (ms): ${parse_ms[*]}"
  echo "- one EndpointSlice changed in that store, store apply → subscriber update, 1,000 times: p50 ${c50} µs, p99 ${c99} µs (median of runs)"
} | python3 bench/write_section.py
