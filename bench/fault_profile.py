#!/usr/bin/env python3
"""Ring-0 instructions per page fault, by function, from a QEMU TCG trace.

Like bench/guest_profile.py, but it cuts the trace into page faults: from the
#PF stub (`trap_stub_14`) to the `iretq` of `trap_common`. Consecutive faults
that ran the same set of functions form a phase (the fault-bench cases run one
after another: warm-up, floor, demand-zero, upgrade read then write, CALLBACK,
MAP, areas); for each phase of at least --min faults it prints the faults'
median length and the instructions per fault of each function.

    python3 bench/fault_profile.py ELF --cmdline "workload=fault-bench faults=50 areas=10"
"""
import argparse, bisect, collections, os, statistics, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from guest_profile import short, symbols, trace_pcs  # noqa: E402


def iretq_address(elf, start):
    """Address of the first `iretq` at or after `start` (the end of trap_common)."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", f"--start-address={start:#x}",
                          f"--stop-address={start + 0x200:#x}", elf],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if "iretq" in line:
            return int(line.split(":")[0].strip(), 16)
    raise SystemExit("no iretq after trap_common")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("elf")
    ap.add_argument("--cmdline", default="workload=fault-bench faults=50 areas=10 tsc_khz=2600000")
    ap.add_argument("--min", type=int, default=5, help="smallest phase to print")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--annotate", metavar="PHASE", type=int,
                    help="also print executions per instruction address in that phase")
    a = ap.parse_args()
    addrs, names = symbols(a.elf)
    by_name = dict(zip(names, addrs))
    entry, common = by_name["trap_stub_14"], by_name["trap_common"]
    end = iretq_address(a.elf, common)
    faults = []  # one Counter per fault
    cur = None
    for pc in trace_pcs(a.qemu, a.elf, a.cmdline):
        if pc == entry:
            cur = collections.Counter()
        if cur is None:
            continue
        i = bisect.bisect_right(addrs, pc) - 1
        cur[names[i] if i >= 0 else "?"] += 1
        cur[pc] += 1
        if pc == end:
            faults.append(cur)
            cur = None
    phases = []
    for c in faults:
        key = frozenset(k for k in c if isinstance(k, str))
        if phases and phases[-1][0] == key:
            phases[-1][1].append(c)
        else:
            phases.append((key, [c]))
    print(f"{len(faults)} page faults ({a.cmdline})")
    for n, (_, group) in enumerate(phases):
        if len(group) < a.min:
            continue
        totals = [sum(v for k, v in c.items() if isinstance(k, str)) for c in group]
        print(f"\nphase {n}: {len(group)} faults, median {statistics.median(totals):.0f} "
              f"instructions (min {min(totals)}, max {max(totals)})")
        sums = collections.Counter()
        for c in group:
            sums.update(c)
        named = collections.Counter({k: v for k, v in sums.items() if isinstance(k, str)})
        for name, k in named.most_common(a.top):
            print(f"{k / len(group):>9.1f}  {short(name)}")
        if a.annotate == n:
            pcs = sorted(k for k in sums if not isinstance(k, str))
            for pc in pcs:
                i = bisect.bisect_right(addrs, pc) - 1
                print(f"    {pc:#x} {sums[pc] / len(group):6.1f}  {short(names[i])[:60]}")


if __name__ == "__main__":
    sys.exit(main())
