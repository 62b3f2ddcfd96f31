#!/usr/bin/env python3
"""`mobius record` overhead (issue 11 item 4): faults per second of the
same run under `mobius run`, `mobius stat -I 100`, `mobius record` (every
fault) and `mobius record --sample 16`, on the built-in workload
`seq-touch pages=2000` and on the test program `touch mmap 2000`.

Two measures:
  1. wall: the median wall time of R runs of each configuration, run for
     run in turn (start to exit of the `mobius` process: boot, the faults,
     the drains, the host writing the file); faults/s = the run's faults
     (from `mobius stat`) / that time.
  2. guest: `mobius stat -x , -e faults,kvm.insn_emulation,time.ready-to-done`
     with `record=N` on the command line and without (the guest records
     and sends the same frames; `stat` only counts them): KVM's emulated
     instructions per fault (on kvm_pvm every ring-0 instruction is
     emulated, ~0.7 us each, so this is the recording's cost exactly) and
     the guest's own faults/s from ready to done.

Only the standard library is used. Markdown on stdout.

    python3 bench/record.py --mobius MOBIUS --programs DIR [--runs 5]
"""
import argparse
import os
import statistics
import subprocess
import tempfile
import time


def wall_s(cmd):
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {r.returncode}")
    return dt


def stat(mobius, target, cmdline):
    """faults, kvm.insn_emulation, time.ready-to-done (ms) of one run."""
    events = "faults,kvm.insn_emulation,time.ready-to-done"
    cmd = [mobius, "stat", "-x", ",", "-e", events]
    if cmdline:
        cmd += ["--cmdline", cmdline]
    err = subprocess.run(cmd + ["--"] + target, capture_output=True, text=True, check=False).stderr
    got = {}
    for line in err.splitlines():
        parts = line.split(",")
        if len(parts) >= 3:
            try:
                got[parts[2]] = float(parts[0])
            except ValueError:
                pass
    return [got.get(e) for e in events.split(",")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mobius", required=True)
    ap.add_argument("--programs", required=True)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    m = a.mobius
    touch = os.path.join(a.programs, "touch")
    out = tempfile.mkdtemp(prefix="mobius-bench-record-")
    data = os.path.join(out, "bench.data")
    workloads = [
        ("seq-touch pages=2000", ["seq-touch", "pages=2000"],
         [m, "run", "--cmdline", "workload=seq-touch pages=2000"]),
        ("touch mmap 2000", [touch, "mmap", "2000"], [m, "run", "--", touch, "mmap", "2000"]),
    ]
    print("### Wall time (median of %d runs, in turn)\n" % a.runs)
    print("| run | configuration | faults | wall ms | faults/s | vs run |")
    print("|---|---|---:|---:|---:|---:|")
    for name, target, plain in workloads:
        faults = stat(m, target, "")[0]
        configs = [
            ("mobius run", plain),
            ("mobius stat -I 100", [m, "stat", "-I", "100", "-o", os.devnull, "--"] + target),
            ("mobius record", [m, "record", "-o", data, "--"] + target),
            ("mobius record --sample 16", [m, "record", "--sample", "16", "-o", data, "--"] + target),
        ]
        times = {c: [] for c, _ in configs}
        for _ in range(a.runs):
            for c, cmd in configs:
                times[c].append(wall_s(cmd))
        base = statistics.median(times["mobius run"])
        for c, _ in configs:
            t = statistics.median(times[c])
            print(f"| {name} | {c} | {faults:,.0f} | {t * 1e3:,.0f} | {faults / t:,.0f} | {t / base:.3f}x |")
    print("\n### Guest side (`mobius stat`, one run each)\n")
    print("| run | recording | faults | emulated insns | insns/fault | +insns/fault | guest ms | faults/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, target, _ in workloads:
        base = None
        for label, line in [("off", ""), ("every fault", "record=1 record_ring=65536"),
                            ("1 in 16", "record=16 record_ring=65536")]:
            f, insns, ms = stat(m, target, line)
            per = insns / f if f and insns is not None else None
            if base is None:
                base = per
            extra = per - base if per is not None and base is not None else None
            fmt = lambda v, p="{:,.0f}": "n/a" if v is None else p.format(v)
            print(f"| {name} | {label} | {fmt(f)} | {fmt(insns)} | {fmt(per, '{:,.1f}')} | "
                  f"{fmt(extra, '{:+,.1f}')} | {fmt(ms, '{:,.1f}')} | {fmt(f / ms * 1e3 if f and ms else None)} |")


if __name__ == "__main__":
    main()
