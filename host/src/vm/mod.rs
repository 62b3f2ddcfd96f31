//! The KVM side: the VM with its guest memory ([`Vm`]), the vCPU registers
//! ([`vcpu`]) and CPUID ([`cpuid`]), the run loop and exit dispatch ([`run`]), exit accounting
//! ([`exits`]), halt detection with an in-kernel APIC ([`halt`]) the signals that stop a running vCPU ([`signal`]) and the bounded
//! warnings about what the guest does ([`warnings`]).

pub mod cpuid;
pub mod exits;
pub mod halt;
pub mod kvm_stats;
pub mod run;
pub mod signal;
pub mod vcpu;
pub mod warnings;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{Kvm, VmFd};
use mobius_shared::layout::{MEMORY_MAX, MEMORY_MIN};
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::devices::{BusError, MmioBus, MmioDevice};

/// Address of the (unused) TSS KVM needs on Intel; above RAM and MMIO.
const KVM_TSS_ADDR: u64 = 0xfffb_d000;

/// Errors from KVM and guest memory setup.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error(
        "{path} does not exist: KVM is not available (load the module: \
         `sudo modprobe kvm_intel` or `sudo modprobe kvm_amd`, and enable virtualisation in the firmware)"
    )]
    KvmMissing { path: PathBuf },
    #[error(
        "permission denied opening {path}: add your user to the kvm group \
         (`sudo usermod -aG kvm $USER`, then log in again) or run as root"
    )]
    KvmPermission { path: PathBuf },
    #[error("cannot use {path} as KVM: {source}")]
    KvmOpen {
        path: PathBuf,
        source: kvm_ioctls::Error,
    },
    #[error("{path} is not a usable KVM device (API version {version}, need 12)")]
    KvmVersion { path: PathBuf, version: i32 },
    #[error("guest memory size {size:#x} is outside [{MEMORY_MIN:#x}, {MEMORY_MAX:#x}]")]
    MemorySize { size: u64 },
    #[error("cannot map {size} bytes of guest memory: {source}")]
    MemoryMap {
        size: u64,
        source: vm_memory::mmap::FromRangesError,
    },
    #[error("KVM: {what}: {source}")]
    Kvm {
        what: &'static str,
        source: kvm_ioctls::Error,
    },
    #[error("MMIO device: {0}")]
    Bus(#[from] BusError),
}

impl VmError {
    pub(crate) fn kvm(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VmError {
        move |source| VmError::Kvm { what, source }
    }

    /// Whether KVM itself is missing or inaccessible.
    pub fn is_kvm_unavailable(&self) -> bool {
        matches!(
            self,
            VmError::KvmMissing { .. }
                | VmError::KvmPermission { .. }
                | VmError::KvmOpen { .. }
                | VmError::KvmVersion { .. }
        )
    }
}

/// A VM with one RAM region `[0, ram_size)` and an MMIO bus, before its vCPU runs.
pub struct Vm {
    kvm: Kvm,
    /// Shared with the disk workers, which signal MSIs on it.
    fd: Arc<VmFd>,
    memory: GuestMemoryMmap,
    ram_size: u64,
    mmio: MmioBus,
    cmdline_extra: Vec<String>,
    virtio_windows: Vec<u64>,
    lapic_in_kernel: bool,
}

impl Vm {
    /// Open KVM at `kvm_path`, create the VM and its guest memory.
    pub fn new(kvm_path: &Path, ram_size: u64) -> Result<Vm, VmError> {
        if !(MEMORY_MIN..=MEMORY_MAX).contains(&ram_size) {
            return Err(VmError::MemorySize { size: ram_size });
        }
        let kvm = open_kvm(kvm_path)?;
        let version = kvm.get_api_version();
        if version != 12 {
            return Err(VmError::KvmVersion {
                path: kvm_path.to_path_buf(),
                version,
            });
        }
        let fd = kvm.create_vm().map_err(VmError::kvm("create VM"))?;
        fd.set_tss_address(KVM_TSS_ADDR as usize)
            .map_err(VmError::kvm("set TSS address"))?;
        let lapic_in_kernel = enable_split_irqchip(&fd);

        // Anonymous, MAP_NORESERVE, private: pages cost nothing until touched.
        let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), ram_size as usize)])
            .map_err(|source| VmError::MemoryMap {
                size: ram_size,
                source,
            })?;
        let host = memory
            .get_host_address(GuestAddress(0))
            .map_err(|_| VmError::MemorySize { size: ram_size })?;
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: ram_size,
            userspace_addr: host as u64,
        };
        // SAFETY: the region describes exactly the mapping owned by `memory`,
        // which lives in this Vm next to `fd` and outlives the VM's use of it
        // (fields drop in declaration order: the VM fd goes before the memory;
        // a disk worker holding the fd holds a clone of the memory too, and
        // drops the fd first).
        unsafe { fd.set_user_memory_region(region) }.map_err(VmError::kvm("set memory region"))?;

        Ok(Vm {
            kvm,
            fd: Arc::new(fd),
            memory,
            ram_size,
            mmio: MmioBus::new(),
            cmdline_extra: Vec::new(),
            virtio_windows: Vec::new(),
            lapic_in_kernel,
        })
    }

    /// Guest memory; devices may keep a clone (it shares the mapping).
    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.memory
    }

    /// Size of guest RAM in bytes.
    pub fn ram_size(&self) -> u64 {
        self.ram_size
    }

    /// Register an MMIO device at guest-physical `[base, base + size)`.
    pub fn add_mmio_device(
        &mut self,
        base: u64,
        size: u64,
        device: Box<dyn MmioDevice>,
    ) -> Result<(), VmError> {
        self.mmio.insert(base, size, device)?;
        Ok(())
    }

    /// Append words to the kernel command line (after the user's and the host's).
    pub fn append_cmdline(&mut self, words: &str) {
        self.cmdline_extra.push(words.to_string());
    }

    /// Announce a virtio-mmio device window to the guest: on the command line
    /// the way Linux (and QEMU's microvm) does, `virtio_mmio.device=<size>@<base>:<irq>`,
    /// and in the boot parameters block.
    pub fn announce_virtio_mmio(&mut self, base: u64, size: u64, irq: u32) {
        self.append_cmdline(&format!(
            "{}={}K@{base:#x}:{irq}",
            mobius_shared::cmdline::VIRTIO_MMIO_DEVICE,
            size / 1024
        ));
        self.virtio_windows.push(base);
    }

    pub(crate) fn virtio_windows(&self) -> &[u64] {
        &self.virtio_windows
    }

    pub fn kvm(&self) -> &Kvm {
        &self.kvm
    }

    pub fn fd(&self) -> &VmFd {
        &self.fd
    }

    /// The VM fd, for a device thread that outlives a borrow (a disk's
    /// worker signals MSIs on it).
    pub fn shared_fd(&self) -> Arc<VmFd> {
        Arc::clone(&self.fd)
    }

    /// Whether the vCPU's local APIC is emulated by KVM (split irqchip), so
    /// that HLT does not leave KVM_RUN (see [`run`]).
    pub fn lapic_in_kernel(&self) -> bool {
        self.lapic_in_kernel
    }

    pub(crate) fn cmdline_extra(&self) -> &[String] {
        &self.cmdline_extra
    }

    pub(crate) fn take_mmio(&mut self) -> MmioBus {
        std::mem::take(&mut self.mmio)
    }
}

/// Local APIC in KVM, PIC and IOAPIC (which the guest never uses) nowhere:
/// `KVM_CAP_SPLIT_IRQCHIP`, as Firecracker and Cloud Hypervisor do without
/// the userspace half. Without an in-kernel APIC, creating a vCPU turns on a
/// kernel-wide static key (`kvm_has_noapic_vcpu`) and destroying it turns it
/// off again: two live patches of the host kernel's text, with IPIs to
/// every CPU, on every run (about 0.45 ms of a 4 ms boot here, BENCHMARKS.md).
/// The in-kernel APIC's own key is released lazily by KVM. Returns false
/// (userspace APIC, HLT exits to us) when KVM refuses.
fn enable_split_irqchip(fd: &VmFd) -> bool {
    let mut cap = kvm_bindings::kvm_enable_cap {
        cap: kvm_bindings::KVM_CAP_SPLIT_IRQCHIP,
        ..Default::default()
    };
    // IOAPIC pins routed through userspace; none are used.
    cap.args[0] = 24;
    fd.enable_cap(&cap).is_ok()
}

fn open_kvm(path: &Path) -> Result<Kvm, VmError> {
    let cpath = CString::new(path.as_os_str().as_bytes()).map_err(|_| VmError::KvmMissing {
        path: path.to_path_buf(),
    })?;
    Kvm::new_with_path(cpath).map_err(|source| match source.errno() {
        libc::ENOENT => VmError::KvmMissing {
            path: path.to_path_buf(),
        },
        libc::EACCES | libc::EPERM => VmError::KvmPermission {
            path: path.to_path_buf(),
        },
        _ => VmError::KvmOpen {
            path: path.to_path_buf(),
            source,
        },
    })
}
