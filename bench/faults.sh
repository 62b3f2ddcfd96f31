#!/usr/bin/env bash
# Page-fault benchmark: the guest's fault-bench workload under mobius (KVM) and
# Linux doing the same work natively (bench/linux_faults.c), in one run, on the
# same machine. Usage: bench/faults.sh MOBIUS [FAULTS] [AREAS]
set -euo pipefail
mobius=${1:?usage: bench/faults.sh path/to/mobius [faults] [areas]}
faults=${2:-500}
areas=${3:-10000}
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc -O2 -o "$out/linux_faults" "$here/linux_faults.c"

echo "## guest: mobius run --cmdline 'workload=fault-bench faults=$faults areas=$areas'"
tsc_khz=""
"$mobius" run --timings --cmdline "workload=fault-bench faults=$faults areas=$areas" \
    >"$out/guest.txt" 2>"$out/guest.err" || { cat "$out/guest.txt" "$out/guest.err"; exit 1; }
grep '^bench:' "$out/guest.txt"
# Cycles to microseconds with the guest's TSC frequency (from the host's KVM_GET_TSC_KHZ).
tsc_khz=$(awk -F'[ =]' '/cpu MHz/ {print int($NF*1000); exit}' /proc/cpuinfo 2>/dev/null || true)
[ -n "$tsc_khz" ] && echo "(TSC ~ ${tsc_khz} kHz: 1,000,000 cycles ~ $((1000000000 / tsc_khz)) us)"

echo
echo "## Linux, natively, same machine"
"$out/linux_faults" demand-zero "$faults"
"$out/linux_faults" read-then-write "$faults"
"$out/linux_faults" areas 10 "$faults"
"$out/linux_faults" areas "$areas" "$faults"
