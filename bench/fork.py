#!/usr/bin/env python3
"""fork benchmark (issue 13): fork + exit + wait4, copy-on-write faults and
a busybox pipeline, in the guest beside Linux, in one run of this script.

  1. `c-forkbench fork MIB N`: a process with MIB MiB touched forks N
     children that exit at once, waiting for each; mean time per cycle,
     timed inside the program (CLOCK_MONOTONIC), and the guest's page
     faults for the whole run (`mobius stat`: cow, cow-reuse, shared);
  2. `c-forkbench cow 16`: in one boot, a forked child's copy-on-write
     fault per page beside a demand-zero fault per page;
  3. `busybox sh -c 'seq 1 N | sort -n | tail -n 1'`: wall time natively
     (busybox applets first on PATH) and under `mobius run`.

Only the standard library is used. Markdown on stdout.

    python3 bench/fork.py --mobius MOBIUS --programs DIR [--busybox /bin/busybox]
"""
import argparse
import os
import re
import subprocess
import tempfile
import time


def said(cmd, pattern):
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    m = re.search(pattern, out)
    return [float(x) for x in m.groups()] if m else None


def guest_faults(mobius, memory, cmd):
    """faults, faults.cow, faults.cow-reuse, faults.shared of one run."""
    events = "faults,faults.cow,faults.cow-reuse,faults.shared"
    err = subprocess.run([mobius, "stat", "-m", memory, "-x", ",", "-e", events, "--"] + cmd,
                         capture_output=True, text=True, check=False).stderr
    counts = {}
    for line in err.splitlines():
        parts = line.split(",")
        if len(parts) >= 3 and parts[0].strip().isdigit():
            counts[parts[2]] = int(parts[0])
    return [counts.get(e, -1) for e in events.split(",")]


def wall_ms(cmd, env=None):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=env)
    return (time.perf_counter() - t) * 1000


def fmt(v, unit=""):
    return "n/a" if v is None else f"{v:,.1f}{unit}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mobius", required=True)
    ap.add_argument("--programs", required=True)
    ap.add_argument("--busybox", default="/bin/busybox")
    ap.add_argument("--lines", type=int, default=100000)
    a = ap.parse_args()
    fb = os.path.join(a.programs, "c-forkbench")
    pat = r"([0-9.]+) us per fork"
    print("| process size | Linux per fork+exit+wait | guest per fork+exit+wait | guest faults (all / cow / cow-reuse / shared) |")
    print("|---|---|---|---|")
    # (MiB, native cycles, guest cycles, guest memory)
    for mib, n_native, n_guest, mem in [(1, 50, 5, "128M"), (16, 20, 2, "256M"), (256, 5, 1, "1G")]:
        native = said([fb, "fork", str(mib), str(n_native)], pat)
        guest_cmd = [fb, "fork", str(mib), str(n_guest)]
        guest = said([a.mobius, "run", "-m", mem, "--"] + guest_cmd, pat)
        faults = guest_faults(a.mobius, mem, guest_cmd)
        print(f"| {mib} MiB | {fmt(native and native[0] / 1000, ' ms')} | "
              f"{fmt(guest and guest[0] / 1000, ' ms')} ({n_guest} cycles) | "
              f"{' / '.join(str(f) for f in faults)} |")
    print()
    cpat = r"cow ([0-9.]+) us/page, demand-zero ([0-9.]+) us/page"
    native = said([fb, "cow", "16"], cpat)
    guest = said([a.mobius, "run", "-m", "256M", "--", fb, "cow", "16"], cpat)
    print("| 16 MiB, per page | copy-on-write fault | demand-zero fault |")
    print("|---|---|---|")
    print(f"| Linux | {fmt(native and native[0], ' us')} | {fmt(native and native[1], ' us')} |")
    print(f"| guest (one boot) | {fmt(guest and guest[0], ' us')} | {fmt(guest and guest[1], ' us')} |")
    print()
    if not os.path.exists(a.busybox):
        print(f"(pipeline: no {a.busybox})")
        return
    script = f"seq 1 {a.lines} | sort -n | tail -n 1"
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([a.busybox, "--install", "-s", d], check=True)
        native = wall_ms([a.busybox, "sh", "-c", script], env={"PATH": d})
    guest = wall_ms([a.mobius, "run", "--", a.busybox, "sh", "-c", script])
    print(f"| `sh -c '{script}'` | Linux | guest (boot to exit) |")
    print("|---|---|---|")
    print(f"| wall time | {native:,.0f} ms | {guest:,.0f} ms |")


if __name__ == "__main__":
    main()
