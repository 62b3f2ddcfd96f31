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

fn parse(file: &File) -> Option<Vec<(String, u64)>> {
    let header: StatsHeader = read_obj(file, 0)?;
    if header.num_desc > MAX_DESCS || header.name_size > MAX_NAME {
        return None;
    }
    let desc_size = std::mem::size_of::<StatsDesc>() as u64 + u64::from(header.name_size);
    let mut out = Vec::new();
    for i in 0..u64::from(header.num_desc) {
        let at = u64::from(header.desc_offset) + i * desc_size;
        let desc: StatsDesc = read_obj(file, at)?;
        let kind = desc.flags & TYPE_MASK;
        if desc.size != 1 || !(kind == TYPE_CUMULATIVE || kind == TYPE_INSTANT) {
            continue;
        }
        let mut name = vec![0u8; header.name_size as usize];
        file.read_exact_at(&mut name, at + std::mem::size_of::<StatsDesc>() as u64)
            .ok()?;
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        let value: u64 = read_obj(file, u64::from(header.data_offset) + u64::from(desc.offset))?;
        out.push((String::from_utf8_lossy(&name[..end]).into_owned(), value));
    }
    Some(out)
}
