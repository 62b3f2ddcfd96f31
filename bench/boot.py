#!/usr/bin/env python3
"""Boot benchmark for `mobius run`.

Measures, in one run of this script:
  1. process start to exit of `mobius run --cmdline <CMDLINE>` over N runs
     (wall clock around spawn+wait: median, p10, p90, min, max);
  2. the host phases `mobius run --timings` reports (median of each);
  3. peak RSS of the mobius process (GNU time's %M, when /usr/bin/time exists);
  4. when qemu-system-x86_64 is installed: the same guest ELF under
     `qemu-system-x86_64 -M microvm` with KVM, same measure, and the ratio;
  5. how boot time grows with guest memory (--sizes): start to exit and the
     `run` phase at each size, the sizes taken in turn within each round so
     that the host's drift falls on all alike.

Only the standard library is used. Results go to stdout (Markdown) and to
bench-results/boot-<timestamp>.md.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def percentile(values, p):
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


DEVNULL = os.open(os.devnull, os.O_WRONLY)
ERR = tempfile.TemporaryFile()


def timed_run(argv, expect=None):
    """posix_spawn argv (stdout to /dev/null, stderr to a file), wait4;
    return (seconds, ru_maxrss KiB, status, stderr).

    posix_spawn (vfork + exec) rather than subprocess.Popen: Popen's own work
    in Python costs several milliseconds and varies, more than a whole boot;
    the harness's remaining cost is measured on `true` and reported."""
    ERR.seek(0)
    ERR.truncate()
    actions = [(os.POSIX_SPAWN_DUP2, DEVNULL, 1), (os.POSIX_SPAWN_DUP2, ERR.fileno(), 2)]
    t0 = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions)
    _, status, rusage = os.wait4(pid, 0)
    t1 = time.perf_counter()
    ERR.seek(0)
    err = ERR.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if expect is not None and code != expect:
        sys.exit(f"bench: {' '.join(argv)} exited {code}, expected {expect}:\n{err}")
    return t1 - t0, rusage.ru_maxrss, code, err


def summary(times_s):
    ms = [t * 1e3 for t in times_s]
    return {
        "median": statistics.median(ms),
        "p10": percentile(ms, 10),
        "p90": percentile(ms, 90),
        "min": min(ms),
        "max": max(ms),
    }


def fmt(s):
    return f"{s['median']:.2f} | {s['p10']:.2f} | {s['p90']:.2f} | {s['min']:.2f} | {s['max']:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mobius", default="target/x86_64-unknown-linux-musl/release/mobius")
    ap.add_argument("--elf", default="target/guest/x86_64-unknown-none/release/mobius-guest")
    ap.add_argument("--cmdline", default="workload=hello")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--qemu-runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--sizes", default="16M,128M,1G,3G",
                    help="guest memory sizes for the growth table ('' for none)")
    ap.add_argument("--size-runs", type=int, default=40)
    ap.add_argument("--against", metavar="MOBIUS",
                    help="another mobius binary (e.g. an older build) measured in the same "
                         "loop, run for run alternating with --mobius: on a host whose "
                         "speed drifts, only such paired numbers compare")
    args = ap.parse_args()

    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        sys.exit("bench: /dev/kvm not available")
    base = [args.mobius, "run", "--cmdline", args.cmdline]

    other = [args.against, "run", "--cmdline", args.cmdline] if args.against else None
    for _ in range(args.warmup):
        timed_run(base, expect=0)
        if other:
            timed_run(other, expect=0)
    times, other_times = [], []
    for _ in range(args.runs):
        times.append(timed_run(base, expect=0)[0])
        if other:
            other_times.append(timed_run(other, expect=0)[0])
    proc = summary(times)
    against = summary(other_times) if other else None
    true = shutil.which("true") or "/bin/true"
    baseline = summary([timed_run([true], expect=0)[0] for _ in range(args.runs)])
    # Linux doing the guest's work natively: a process that prints the line.
    echo = shutil.which("echo") or "/bin/echo"
    native = summary([timed_run([echo, "Hello from the Möbius guest"], expect=0)[0]
                      for _ in range(args.runs)])

    # Peak RSS: ru_maxrss of a child spawned from Python counts Python's own
    # pages from before exec (vfork), so measure through GNU time instead.
    rss = []
    gnu_time = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
    if gnu_time:
        for _ in range(10):
            _, _, _, err = timed_run([gnu_time, "-f", "maxrss=%M"] + base, expect=0)
            m = re.search(r"maxrss=(\d+)", err)
            if m:
                rss.append(int(m.group(1)))

    phases = {}
    for _ in range(max(args.runs // 4, 10)):
        _, _, _, err = timed_run(base + ["--timings"], expect=0)
        m = re.search(r"mobius: timings: (.*?) exits:", err)
        if not m:
            sys.exit(f"bench: no timings line in:\n{err}")
        for key, val in re.findall(r"(\w+)=([0-9.]+)ms", m.group(1)):
            phases.setdefault(key, []).append(float(val))

    qemu = shutil.which("qemu-system-x86_64")
    qsum = None
    if qemu and os.path.exists(args.elf) and args.qemu_runs > 0:
        qargv = [qemu, "-M", "microvm", "-accel", "kvm", "-m", "128M", "-kernel", args.elf,
                 "-append", args.cmdline, "-nographic", "-no-reboot", "-nodefaults",
                 "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]
        timed_run(qargv, expect=1)
        qtimes = [timed_run(qargv, expect=1)[0] for _ in range(args.qemu_runs)]
        qsum = summary(qtimes)

    sizes = [z for z in args.sizes.split(",") if z]
    by_size = {z: ([], []) for z in sizes}
    for _ in range(args.size_runs if sizes else 0):
        for z in sizes:
            t, _, _, err = timed_run([args.mobius, "run", "--memory", z, "--timings",
                                      "--cmdline", args.cmdline], expect=0)
            m = re.search(r"\brun=([0-9.]+)ms", err)
            by_size[z][0].append(t * 1e3)
            by_size[z][1].append(float(m.group(1)) if m else float("nan"))

    uname = os.uname()
    lines = [
        f"# mobius boot benchmark ({time.strftime('%Y-%m-%d %H:%M:%S %Z')})",
        "",
        f"host: {uname.sysname} {uname.release} {uname.machine}, {os.cpu_count()} CPUs; "
        f"cmdline `{args.cmdline}`; {args.runs} runs after {args.warmup} warm-up",
        "",
        "| measure (ms) | median | p10 | p90 | min | max |",
        "|---|---|---|---|---|---|",
        f"| mobius run: process start to exit | {fmt(proc)} |",
    ] + ([f"| `{args.against}` (alternating with the above) | {fmt(against)} |"] if against else []) + [
        f"| the harness alone: spawn and wait for `true` | {fmt(baseline)} |",
        f"| Linux, natively: a process printing the same line (`echo`) | {fmt(native)} |",
    ]
    if qsum:
        lines.append(f"| qemu -M microvm -accel kvm: start to exit ({args.qemu_runs} runs) | {fmt(qsum)} |")
    lines += ["", "| --timings phase (ms) | median |", "|---|---|"]
    for key, vals in phases.items():
        lines.append(f"| {key} | {statistics.median(vals):.3f} |")
    lines.append("")
    if sizes:
        lines += [f"guest memory size (--memory; {args.size_runs} runs each, sizes in turn):", "",
                  "| memory | start to exit, median (ms) | p10-p90 | guest `run` phase, median (ms) |",
                  "|---|---|---|---|"]
        for z in sizes:
            wall, run = by_size[z]
            lines.append(f"| {z} | {statistics.median(wall):.2f} | "
                         f"{percentile(wall, 10):.2f}-{percentile(wall, 90):.2f} | "
                         f"{statistics.median(run):.3f} |")
        lines.append("")
    if rss:
        lines.append(
            f"peak RSS of mobius (128 MiB guest): median {statistics.median(rss) / 1024:.2f} MiB, "
            f"max {max(rss) / 1024:.2f} MiB (/usr/bin/time %M, 10 runs)"
        )
    else:
        lines.append("peak RSS: /usr/bin/time not installed; not measured")
    if qsum:
        lines.append(f"QEMU microvm / mobius (median start to exit): {qsum['median'] / proc['median']:.1f}x")
    elif args.qemu_runs == 0:
        lines.append("QEMU: not measured (--qemu-runs 0)")
    else:
        lines.append("QEMU: not installed (or guest ELF missing); no comparison")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs("bench-results", exist_ok=True)
    with open(time.strftime("bench-results/boot-%Y%m%d-%H%M%S.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
