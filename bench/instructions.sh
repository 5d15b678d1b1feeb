#!/usr/bin/env bash
# Instructions per call, counted by valgrind (callgrind): repeatable where CPU time is not (a shared,
# loaded machine). For each variant, runs bench/call-cost.js under callgrind with two call counts
# and prints (instructions(long) - instructions(short)) / (long - short): start-up, connecting and
# the 1,000 warm-up calls cancel out. Needs `npm run build` first and valgrind on PATH.
#
#   bash bench/instructions.sh [--side=client|server] [--in-flight=N] [--calls=SHORT,LONG] variant...
#
# BENCH_QAM_BASE names another qam build for the qam-base variant (see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
side=client
inflight=1
short=500
long=2500
variants=()
for arg in "$@"; do
  case "$arg" in
    --side=*) side="${arg#--side=}" ;;
    --in-flight=*) inflight="${arg#--in-flight=}" ;;
    --calls=*) short="${arg#--calls=}"; long="${short#*,}"; short="${short%,*}" ;;
    *) variants+=("$arg") ;;
  esac
done
[ "${#variants[@]}" -gt 0 ] || variants=(amqplib qam cloudamqp)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
count() {
  # $1 variant, $2 calls: the instructions the measured process executed, start to exit.
  valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file="$work/out.%p" \
    node dist/bench/call-cost.js "$1" "$2" "$inflight" "$side" 2>"$work/log" >/dev/null ||
    { cat "$work/log" >&2; return 1; }
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$work/log" | tail -1
}
echo "instructions per call, ${side} side, ${inflight} in flight, calls ${long} - ${short} (valgrind $(valgrind --version | sed 's/valgrind-//'), node $(node --version))"
for variant in "${variants[@]}"; do
  a=$(count "$variant" "$short")
  b=$(count "$variant" "$long")
  echo "$variant: $(( (b - a) / (long - short) ))"
done
