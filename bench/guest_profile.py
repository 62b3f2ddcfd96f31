#!/usr/bin/env python3
"""Ring-0 instruction profile of the guest kernel, from a QEMU TCG trace.

On kvm_pvm every guest ring-0 instruction is emulated (~1,500 cycles each), so
the number of instructions a path executes is its cost. This boots the guest
ELF under `qemu-system-x86_64 -M microvm -accel tcg -singlestep -d exec`,
which logs one line per executed instruction, and counts them per function
(symbols from `nm`). QEMU's own firmware before the kernel entry is left out.

    python3 bench/guest_profile.py ELF [--cmdline "workload=hello"] [--top 40]
    python3 bench/guest_profile.py ELF --initrd hello.cpio   # a program's run
"""
import argparse, bisect, collections, os, re, struct, subprocess, sys, tempfile


def symbols(elf):
    out = subprocess.run(["nm", "-n", "-C", elf], capture_output=True, text=True, check=True).stdout
    addrs, names = [], []
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            addrs.append(int(parts[0], 16))
            names.append(parts[2])
    return addrs, names


# Compiler helpers whose cost belongs to their caller.
LEAVES = {"memcpy", "memset", "memmove", "memcmp", "bcmp"}


# QEMU 7.2's microvm puts the only virtio-mmio device in its last slot.
QEMU_VIRTIO_WINDOW = 0xFEB02E00


def params_block(user, khz, virtio=()):
    """The version-2 boot-parameters block (shared/src/boot_params.rs) that
    `mobius run` writes for the user's words `user`, including its parse of
    them (BootOptions::parse: the last occurrence of a key wins). Falls back
    to no parse, as the host does, if the user gave a key the block carries
    for the host (tsc_khz, discard, virtio_mmio.device)."""
    flags, spans, nums = 1 | 0x80, {"workload": None, "test": None}, {}  # discard, console
    pos, words = 0, []
    for w in user.split(" "):
        if w:
            words.append((pos, w))
        pos += len(w) + 1
    summary = False
    for at, w in words:
        k, eq, v = w.partition("=")
        if k in spans:
            spans[k] = (at + len(k) + len(eq), len(v))
        elif k in ("stats_interval_ms", "run_id"):
            nums[k] = int(v) if v.isdigit() else None
        elif k == "summary":
            summary = v == "1"
        elif k in ("tsc_khz", "discard", "virtio_mmio.device"):
            return (b"MobiusBP" + struct.pack("<IIQII", 2, flags, khz, len(user), len(virtio))
                    + windows(virtio) + bytes(64))
    flags |= 2
    for bit, present in ((4, spans["workload"]), (8, spans["test"]),
                         (16, nums.get("stats_interval_ms") is not None),
                         (32, nums.get("run_id") is not None), (64, summary)):
        if present:
            flags |= bit
    span = lambda s: struct.pack("<HH", *(s or (0, 0)))
    return (b"MobiusBP" + struct.pack("<IIQII", 2, flags, khz, len(user), len(virtio)) + windows(virtio)
            + span(spans["workload"]) + span(spans["test"])
            + struct.pack("<QQ", nums.get("stats_interval_ms") or 0, nums.get("run_id") or 0)
            + bytes(40))


def windows(bases):
    return b"".join(struct.pack("<Q", b) for b in bases) + bytes(8 * (4 - len(bases)))


def trace_pcs(qemu, elf, cmdline, params=False, initrd=None):
    """Boot `elf` under QEMU TCG single-stepping and yield the address of
    every instruction executed, in order. With `params`, also load a mobius
    boot-parameters block at 0x6800 as `mobius run` writes it (the user's
    words are those before the first ` tsc_khz=`) and give the guest a virtio
    console, so that it takes `mobius run`'s path."""
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "trace.log")
        extra = []
        if params:
            blob = os.path.join(d, "params.bin")
            user = cmdline.split(" tsc_khz=")[0] if " tsc_khz=" in cmdline else ""
            m = re.search(r"tsc_khz=(\d+)", cmdline)
            khz = int(m.group(1)) if m else 0
            with open(blob, "wb") as f:
                f.write(params_block(user, khz, [QEMU_VIRTIO_WINDOW]))
            # The statistics go over a virtio console, as under `mobius run`.
            extra = ["-device", f"loader,file={blob},addr=0x6800,force-raw=on",
                     "-global", "virtio-mmio.force-legacy=false",
                     "-device", "virtio-serial-device", "-chardev", "null,id=vc",
                     "-device", "virtconsole,chardev=vc"]
        if initrd:
            # A program to run (`mobius pack` writes the archive).
            extra += ["-initrd", initrd]
        subprocess.run([qemu, "-M", "microvm,auto-kernel-cmdline=off", "-accel", "tcg",
                        "-singlestep", "-m", "128M", "-kernel", elf, "-append", cmdline,
                        "-nographic", "-no-reboot", "-nodefaults", "-serial", "null",
                        "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
                        "-d", "exec,nochain", "-D", log] + extra,
                       stdin=subprocess.DEVNULL, timeout=600)
        pat = re.compile(r"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/")
        with open(log) as f:
            for line in f:
                m = pat.match(line)
                if m:
                    yield int(m.group(1), 16)


def short(name):
    name = re.sub(r"::h[0-9a-f]{16}$", "", name)
    return name if len(name) < 110 else name[:107] + "..."


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("elf")
    ap.add_argument("--cmdline", default="workload=hello tsc_khz=2600000")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--params", action="store_true",
                    help="also load a mobius boot-parameters block (shared/src/boot_params.rs) "
                         "at 0x6800 as `mobius run` does; the line's host words then follow "
                         "the user's, which are the words before the first tsc_khz=")
    ap.add_argument("--initrd", help="an initramfs (from `mobius pack -o FILE -- PROGRAM ARGS`): "
                    "profile the kernel running that program")
    a = ap.parse_args()
    addrs, names = symbols(a.elf)
    counts = collections.Counter()
    callers = collections.Counter()
    last = "?"
    total = 0
    lo, hi = addrs[0] if addrs else 0, (addrs[-1] + 0x10000) if addrs else 0
    for pc in trace_pcs(a.qemu, a.elf, a.cmdline, a.params, a.initrd):
        if not (lo <= pc < hi):
            continue
        i = bisect.bisect_right(addrs, pc) - 1
        name = names[i] if i >= 0 else "?"
        counts[name] += 1
        total += 1
        if name in LEAVES:
            callers[(name, last)] += 1
        else:
            last = name
    print(f"{total} guest kernel instructions ({a.cmdline})")
    for name, n in counts.most_common(a.top):
        print(f"{n:>9} {100.0 * n / max(total, 1):5.1f}%  {short(name)}")
    print("\nmemory helpers by the function that called them:")
    for (leaf, caller), n in callers.most_common(a.top // 2):
        print(f"{n:>9}  {leaf} <- {short(caller)}")


if __name__ == "__main__":
    sys.exit(main())
