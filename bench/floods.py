#!/usr/bin/env python3
"""Hostile-guest floods (issue 12's measurements): for each flood workload
(statistics frames, unknown ports, unknown MMIO, console lines, virtio
descriptors outside RAM, hostile virtio-blk requests on a 32 KiB read-only
disk), run `mobius run --cmdline "workload=flood-KIND ms=MS"` for 1 s and
for 10 s of guest time and report the host's peak RSS (GNU time's %M), its
CPU time per guest second, and how many actions the guest made (for `disk`,
rounds of its 20 cases). Bounded memory means the 1 s and 10 s peaks match.

    python3 bench/floods.py --mobius MOBIUS
"""
import argparse
import re
import shutil
import subprocess
import tempfile
import os

KINDS = ["stats", "ports", "mmio", "console", "descriptors", "disk"]


def run(mobius, kind, ms):
    with tempfile.TemporaryDirectory() as d:
        tfile = os.path.join(d, "time")
        disk = []
        if kind == "disk":
            path = os.path.join(d, "disk.img")
            with open(path, "wb") as f:
                f.write(bytes(i % 251 for i in range(64 * 512)))
            disk = ["--disk", path]
        out = subprocess.run(
            ["/usr/bin/time", "-o", tfile, "-f", "%M %U %S %e", mobius, "run", *disk, "--cmdline",
             f"workload=flood-{kind} ms={ms}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=False).stdout
        rss, user, sys_, wall = open(tfile).read().split()[-4:]
    m = re.search(r"workload flood-\S+: (\d+) in", out)
    return int(rss), float(user) + float(sys_), float(wall), int(m.group(1)) if m else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mobius", required=True)
    a = ap.parse_args()
    if not shutil.which("/usr/bin/time"):
        print("bench/floods.py needs GNU time (/usr/bin/time)")
        return 1
    print("| flood | peak RSS, 1 s | peak RSS, 10 s | host CPU per guest second | actions per second |")
    print("|---|---|---|---|---|")
    for kind in KINDS:
        r1, _, _, _ = run(a.mobius, kind, 1000)
        r10, cpu, wall, n = run(a.mobius, kind, 10000)
        print(f"| {kind} | {r1 / 1024:.1f} MiB | {r10 / 1024:.1f} MiB | {cpu / 10:.2f} s | {n / 10:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
