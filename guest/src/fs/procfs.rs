//! `/proc`: what test harnesses and tools read of the system, generated
//! when read: `meminfo`, `mounts`, `uptime`, `sys/kernel/pid_max`, `disks`
//! (`mobius`'s own: each virtio-blk disk and its counters), and per
//! process `/proc/PID/{exe,cmdline,status}` with `/proc/self` linking to
//! the reader's own.
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use super::vfs::{DirEntry, Errno, FsStats, Meta, Node, NodeRef, S_IFDIR, S_IFLNK, S_IFREG};
use crate::errno::{EISDIR, ENOENT};
use crate::proc::task;

/// `PROC_SUPER_MAGIC`.
const PROC_MAGIC: u64 = 0x9fa0;

/// What a node of `/proc` is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Root,
    /// `/proc/sys`, `/proc/sys/kernel`.
    Sys,
    SysKernel,
    /// A file whose text [`text`] makes.
    File(Gen),
    /// `/proc/self`: a link to the reader's `/proc/PID`.
    SelfLink,
    /// `/proc/PID`.
    ProcessDir(u32),
    /// `/proc/PID/exe`.
    Exe(u32),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Gen {
    MemInfo,
    Mounts,
    Uptime,
    Disks,
    PidMax,
    Cmdline(u32),
    Status(u32),
}

struct ProcNode(Kind);

/// The `/proc` directory.
pub fn root() -> NodeRef {
    node(Kind::Root)
}

fn node(kind: Kind) -> NodeRef {
    Arc::new(ProcNode(kind))
}

/// Fixed entries of the root.
const ROOT_FILES: [(&str, Gen); 4] = [
    ("disks", Gen::Disks),
    ("meminfo", Gen::MemInfo),
    ("mounts", Gen::Mounts),
    ("uptime", Gen::Uptime),
];

fn ino(kind: Kind) -> u64 {
    match kind {
        Kind::Root => 1,
        Kind::Sys => 2,
        Kind::SysKernel => 3,
        Kind::SelfLink => 4,
        Kind::File(Gen::MemInfo) => 5,
        Kind::File(Gen::Mounts) => 6,
        Kind::File(Gen::Uptime) => 7,
        Kind::File(Gen::PidMax) => 8,
        Kind::File(Gen::Disks) => 9,
        Kind::ProcessDir(p) => (u64::from(p) << 8) | 1,
        Kind::Exe(p) => (u64::from(p) << 8) | 2,
        Kind::File(Gen::Cmdline(p)) => (u64::from(p) << 8) | 3,
        Kind::File(Gen::Status(p)) => (u64::from(p) << 8) | 4,
    }
}

/// The process `pid`'s name and parent, if it lives (zombies included).
fn process(pid: u32) -> Option<(String, u32)> {
    let t = task::table();
    let p = t.processes.get(&pid)?;
    Some((p.name.clone(), p.parent))
}

fn meminfo() -> String {
    let f = crate::kvmm::vmm().lock().frames().stats();
    let kib = |frames: u64| frames.saturating_mul(4);
    format!(
        "MemTotal:       {:8} kB\nMemFree:        {:8} kB\nMemAvailable:   {:8} kB\n\
         Buffers:               0 kB\nCached:                0 kB\n\
         SwapTotal:             0 kB\nSwapFree:              0 kB\n",
        kib(f.total),
        kib(f.free),
        kib(f.free)
    )
}

fn mounts() -> String {
    let mut s = String::new();
    for (path, st) in super::vfs::mounts() {
        let kind = match st.magic {
            super::tmpfs::TMPFS_MAGIC if path == "/dev" => "devtmpfs",
            super::tmpfs::TMPFS_MAGIC => "tmpfs",
            PROC_MAGIC => "proc",
            super::ext4::EXT4_MAGIC => "ext4",
            _ => "rootfs",
        };
        let ro = if st.flags & super::vfs::ST_RDONLY != 0 {
            "ro"
        } else {
            "rw"
        };
        s.push_str(&format!("{kind} {path} {kind} {ro} 0 0\n"));
    }
    s
}

/// One line per disk: `disk0 base 0xd0001000 vector 64 sectors 16384 ro
/// sector0 <fnv-1a hex> requests 12 failed 0 bad-used 0 interrupts 12`,
/// then `ext4 errors N` (reads and lookups of `/mnt` that gave `EIO`).
fn disks() -> String {
    let mut s = String::new();
    for d in crate::dev::virtio_blk::disks() {
        let st = &d.stats;
        let load =
            |c: &core::sync::atomic::AtomicU64| c.load(core::sync::atomic::Ordering::Relaxed);
        s.push_str(&format!(
            "disk{} base {:#x} vector {} sectors {} {} sector0 {} requests {} failed {} bad-used {} interrupts {}\n",
            d.index,
            d.base,
            d.vector.map_or(String::from("polled"), |v| v.to_string()),
            d.capacity,
            if d.read_only { "ro" } else { "rw" },
            d.sector0.map_or(String::from("unread"), |h| format!("{h:016x}")),
            load(&st.requests),
            load(&st.failed),
            load(&st.bad_used),
            load(&st.interrupts),
        ));
    }
    s.push_str(&format!("ext4 errors {}\n", super::ext4::errors()));
    s
}

fn text(g: Gen) -> Result<Vec<u8>, Errno> {
    let text = match g {
        Gen::MemInfo => meminfo(),
        Gen::Mounts => mounts(),
        Gen::Uptime => {
            let ns = crate::arch::x86_64::tsc::ns_since_boot();
            format!("{}.{:02} 0.00\n", ns / 1_000_000_000, ns / 10_000_000 % 100)
        }
        Gen::PidMax => format!("{}\n", task::PID_MAX),
        Gen::Disks => disks(),
        Gen::Cmdline(pid) => {
            let t = task::table();
            let p = t.processes.get(&pid).ok_or(ENOENT)?;
            return Ok(p.cmdline.clone());
        }
        Gen::Status(pid) => {
            let (name, parent) = process(pid).ok_or(ENOENT)?;
            let short = name.rsplit('/').next().unwrap_or_default();
            format!("Name:\t{short}\nPid:\t{pid}\nPPid:\t{parent}\n")
        }
    };
    Ok(text.into_bytes())
}

fn entry(name: &str, kind: Kind) -> DirEntry {
    let mode = ProcNode(kind).meta().mode;
    DirEntry {
        name: String::from(name),
        ino: ino(kind),
        kind: mode & super::vfs::S_IFMT,
    }
}

impl ProcNode {
    fn children(&self) -> Vec<(String, Kind)> {
        let mut v: Vec<(String, Kind)> = Vec::new();
        match self.0 {
            Kind::Root => {
                for (name, g) in ROOT_FILES {
                    v.push((String::from(name), Kind::File(g)));
                }
                v.push((String::from("self"), Kind::SelfLink));
                v.push((String::from("sys"), Kind::Sys));
                let pids: Vec<u32> = task::table().processes.keys().copied().collect();
                for pid in pids {
                    v.push((pid.to_string(), Kind::ProcessDir(pid)));
                }
            }
            Kind::Sys => v.push((String::from("kernel"), Kind::SysKernel)),
            Kind::SysKernel => v.push((String::from("pid_max"), Kind::File(Gen::PidMax))),
            Kind::ProcessDir(pid) => {
                v.push((String::from("cmdline"), Kind::File(Gen::Cmdline(pid))));
                v.push((String::from("exe"), Kind::Exe(pid)));
                v.push((String::from("status"), Kind::File(Gen::Status(pid))));
            }
            _ => {}
        }
        v
    }
}

impl Node for ProcNode {
    fn meta(&self) -> Meta {
        let mode = match self.0 {
            Kind::Root | Kind::Sys | Kind::SysKernel | Kind::ProcessDir(_) => S_IFDIR | 0o555,
            Kind::SelfLink | Kind::Exe(_) => S_IFLNK | 0o777,
            Kind::File(_) => S_IFREG | 0o444,
        };
        Meta {
            dev: super::DEV_PROC,
            ino: ino(self.0),
            mode,
            nlink: if mode & S_IFDIR != 0 { 2 } else { 1 },
            ..Meta::default()
        }
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let Kind::File(g) = self.0 else {
            return Err(EISDIR);
        };
        let t = text(g)?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let rest = t.get(start..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }

    fn lookup(&self, name: &str) -> Result<NodeRef, Errno> {
        if !self.meta().is_dir() {
            return Err(crate::errno::ENOTDIR);
        }
        if self.0 == Kind::Root {
            if let Ok(pid) = name.parse::<u32>() {
                return process(pid)
                    .map(|_| node(Kind::ProcessDir(pid)))
                    .ok_or(ENOENT);
            }
        }
        self.children()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, k)| node(k))
            .ok_or(ENOENT)
    }

    fn read_dir(&self) -> Result<Vec<DirEntry>, Errno> {
        if !self.meta().is_dir() {
            return Err(crate::errno::ENOTDIR);
        }
        Ok(self.children().iter().map(|(n, k)| entry(n, *k)).collect())
    }

    fn readlink(&self) -> Result<String, Errno> {
        match self.0 {
            Kind::SelfLink => task::table()
                .current_pid()
                .map(|p| p.to_string())
                .ok_or(ENOENT),
            Kind::Exe(pid) => process(pid).map(|(name, _)| name).ok_or(ENOENT),
            _ => Err(crate::errno::EINVAL),
        }
    }

    fn fs_stats(&self) -> FsStats {
        FsStats {
            magic: PROC_MAGIC,
            block_size: 4096,
            ..FsStats::default()
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
