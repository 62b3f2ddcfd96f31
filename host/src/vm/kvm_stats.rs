//! KVM's own per-vCPU statistics through the binary stats interface
//! (`KVM_GET_STATS_FD`, Linux 5.14+; Documentation/virt/kvm/api.rst §4.133).
//! kvm-ioctls 0.25 has no wrapper for it, so this issues the ioctl and reads
//! the header, descriptors and data with `pread`.
//!
//! Only cumulative and instant scalar statistics are kept (histograms are
//! skipped). A kernel without the interface gives an empty list: `mobius stat`
//! then reports KVM statistics as not supported, as perf does.
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::FileExt;

use kvm_ioctls::VcpuFd;

/// `struct kvm_stats_header` (include/uapi/linux/kvm.h).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct StatsHeader {
    flags: u32,
    name_size: u32,
    num_desc: u32,
    id_offset: u32,
    desc_offset: u32,
    data_offset: u32,
}

/// The fixed part of `struct kvm_stats_desc`; `name_size` bytes of name follow.
/// (kvm-bindings' type ends in a flexible array, so it is not `Copy`.)
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct StatsDesc {
    flags: u32,
    exponent: i16,
    size: u16,
    offset: u32,
    bucket_size: u32,
}

/// `_IO(KVMIO, 0xce)`.
const KVM_GET_STATS_FD: libc::c_ulong = 0xae_ce;
/// `KVM_STATS_TYPE_MASK` and the types kept.
const TYPE_MASK: u32 = 0xf;
const TYPE_CUMULATIVE: u32 = 0;
const TYPE_INSTANT: u32 = 1;
/// Refuse absurd headers (the data comes from the kernel, but stay bounded).
const MAX_DESCS: u32 = 4096;
const MAX_NAME: u32 = 256;

/// Read every scalar statistic of `vcpu` as `(name, value)`.
pub fn read(vcpu: &VcpuFd) -> Vec<(String, u64)> {
    // SAFETY: KVM_GET_STATS_FD takes no argument and returns a new fd or -1.
    let fd = unsafe { libc::ioctl(vcpu.as_raw_fd(), KVM_GET_STATS_FD as _) };
    if fd < 0 {
        return Vec::new();
    }
    // SAFETY: `fd` was just returned to us and is owned by nothing else.
    let file = unsafe { File::from_raw_fd(fd) };
    parse(&file).unwrap_or_default()
}

fn read_obj<T: Copy + Default>(file: &File, offset: u64) -> Option<T> {
    let mut v = T::default();
    // SAFETY: T is a plain-old-data kvm binding; any bytes are a valid value.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(&mut v as *mut T as *mut u8, std::mem::size_of::<T>())
    };
    file.read_exact_at(bytes, offset).ok()?;
    Some(v)
}

/// Header, then the whole descriptor block and the whole data block in one
/// read each (a `pread` per statistic cost ~130 system calls, ~1 ms).
fn parse(file: &File) -> Option<Vec<(String, u64)>> {
    let header: StatsHeader = read_obj(file, 0)?;
    if header.num_desc > MAX_DESCS || header.name_size > MAX_NAME {
        return None;
    }
    let fixed = std::mem::size_of::<StatsDesc>();
    let desc_size = fixed + header.name_size as usize;
    let mut descs = vec![0u8; desc_size * header.num_desc as usize];
    file.read_exact_at(&mut descs, u64::from(header.desc_offset))
        .ok()?;
    let parsed: Vec<(StatsDesc, &[u8])> = descs
        .chunks_exact(desc_size)
        .map(|d| (desc_at(&d[..fixed]), &d[fixed..]))
        .collect();
    let data_len = parsed
        .iter()
        .map(|(d, _)| d.offset as usize + 8 * usize::from(d.size))
        .max()
        .unwrap_or(0);
    let mut data = vec![0u8; data_len];
    file.read_exact_at(&mut data, u64::from(header.data_offset))
        .ok()?;
    let mut out = Vec::new();
    for (desc, name) in parsed {
        let kind = desc.flags & TYPE_MASK;
        if desc.size != 1 || !(kind == TYPE_CUMULATIVE || kind == TYPE_INSTANT) {
            continue;
        }
        let at = desc.offset as usize;
        let value = u64::from_ne_bytes(data.get(at..at + 8)?.try_into().ok()?);
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        out.push((String::from_utf8_lossy(&name[..end]).into_owned(), value));
    }
    Some(out)
}

/// A descriptor's fixed part from its bytes (native endian, as the kernel
/// writes it).
fn desc_at(b: &[u8]) -> StatsDesc {
    let u32_at = |o: usize| u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    StatsDesc {
        flags: u32_at(0),
        exponent: i16::from_ne_bytes([b[4], b[5]]),
        size: u16::from_ne_bytes([b[6], b[7]]),
        offset: u32_at(8),
        bucket_size: u32_at(12),
    }
}
