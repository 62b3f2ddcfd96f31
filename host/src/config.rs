//! What a run needs ([`RunConfig`]) and how a caller extends it ([`RunHooks`]).
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::{BootMode, Error, Seccomp, Vm};

/// Which kernel to boot.
///
/// ```
/// use mobius::KernelSource;
///
/// // The guest kernel carried inside this crate (`mobius::BUNDLED_KERNEL`)...
/// let bundled = KernelSource::Bundled;
/// // ...or an x86-64 ELF of your own, read by offset when the run starts
/// // (only its headers, notes and loadable segments).
/// let own = KernelSource::Path("build/kernel.elf".into());
/// assert_ne!(bundled, own);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSource {
    /// [`crate::BUNDLED_KERNEL`], the guest kernel built with this crate.
    Bundled,
    /// A kernel ELF file: x86-64, 64-bit, segments at or above 1 MiB.
    Path(PathBuf),
}

/// Everything a run needs. Start from [`RunConfig::default`] (the bundled
/// kernel, 128 MiB, no seccomp filter) and set what you need; `mobius run`'s
/// options map onto it one to one ([`crate::cli::RunArgs::config`]).
///
/// ```
/// use std::time::Duration;
/// use mobius::{BootMode, RunConfig};
///
/// let config = RunConfig {
///     // A built-in workload and its parameters (`mobius list`).
///     cmdline: "workload=seq-touch pages=100".into(),
///     memory: 64 << 20,
///     timeout: Some(Duration::from_secs(30)),
///     boot: BootMode::Pvh,
///     ..RunConfig::default()
/// };
/// assert_eq!(config.kernel, mobius::KernelSource::Bundled);
/// ```
///
/// To run a static Linux program instead, pack it into [`RunConfig::initramfs`]
/// with [`crate::boot::initramfs::ArchiveSpec`].
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The kernel to boot.
    pub kernel: KernelSource,
    /// Guest RAM in bytes, a multiple of 4 KiB in `[MEMORY_MIN, MEMORY_MAX]`
    /// (`mobius_shared::layout`: 4 MiB to 3 GiB).
    pub memory: u64,
    /// The user's command line; the host appends `tsc_khz=` and `discard=1`,
    /// then whatever the hooks add.
    pub cmdline: String,
    /// Stop the guest after this long ([`crate::Stop::Timeout`]).
    pub timeout: Option<Duration>,
    /// How the vCPU enters the kernel.
    pub boot: BootMode,
    /// The KVM device, normally `/dev/kvm`.
    pub kvm_device: PathBuf,
    /// Read KVM's per-vCPU statistics at the end ([`crate::RunOutcome::kvm_stats`];
    /// `mobius stat` wants them, a plain run does not pay for them).
    pub kvm_stats: bool,
    /// A newc cpio archive handed to the guest as its PVH module, at the top
    /// of RAM ([`crate::boot::initramfs::ArchiveSpec::build`] makes one).
    pub initramfs: Option<Vec<u8>>,
    /// The seccomp filter to install before the vCPU runs ([`crate::seccomp`]);
    /// off by default, on in the `mobius` command unless `--no-seccomp`. It
    /// confines the calling thread for good: leave it off in tests.
    pub seccomp: Seccomp,
    /// Open files the filter lets the vCPU thread `write` to besides stdout
    /// and stderr (`mobius stat -o FILE`, whose `-I` lines are written while
    /// the guest runs and whose report is written after the last run).
    pub seccomp_write_fds: Vec<std::os::fd::RawFd>,
    /// virtio-blk disks (`--disk`), at most
    /// [`MAX_DISKS`](mobius_shared::virtio_mmio::MAX_DISKS): disk `i` at
    /// [`disk_window`](mobius_shared::virtio_mmio::disk_window)`(i)`,
    /// completing on vector
    /// [`disk_vector`](mobius_shared::virtio_mmio::disk_vector)`(i)`.
    pub disks: Vec<crate::devices::virtio::disk::DiskConfig>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            kernel: KernelSource::Bundled,
            memory: 128 << 20,
            cmdline: String::new(),
            timeout: None,
            boot: BootMode::Long,
            kvm_device: PathBuf::from("/dev/kvm"),
            kvm_stats: false,
            initramfs: None,
            seccomp: Seccomp::Off,
            seccomp_write_fds: Vec::new(),
            disks: Vec::new(),
        }
    }
}

/// Ways for a caller to extend a run: [`NoHooks`] adds nothing,
/// [`crate::StatsHooks`] collects the guest's fault statistics.
///
/// A hook that keeps the guest's console output instead of printing it:
///
/// ```no_run
/// use std::io::Write;
/// use std::sync::{Arc, Mutex};
/// use mobius::{run_vm, RunConfig, RunHooks};
///
/// #[derive(Clone, Default)]
/// struct Console(Arc<Mutex<Vec<u8>>>);
///
/// impl Write for Console {
///     fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
///         self.0.lock().unwrap().extend_from_slice(buf);
///         Ok(buf.len())
///     }
///     fn flush(&mut self) -> std::io::Result<()> {
///         Ok(())
///     }
/// }
///
/// impl RunHooks for Console {
///     fn serial_output(&mut self) -> Box<dyn Write + Send> {
///         Box::new(self.clone())
///     }
/// }
///
/// let mut console = Console::default();
/// run_vm(&RunConfig::default(), &mut console)?;
/// let text = String::from_utf8_lossy(&console.0.lock().unwrap()).into_owned();
/// assert!(text.starts_with("Hello from the Möbius guest"));
/// # Ok::<(), mobius::Error>(())
/// ```
pub trait RunHooks {
    /// Called once guest memory exists, before the kernel is loaded: register
    /// MMIO devices ([`Vm::add_mmio_device`]), keep a clone of
    /// [`Vm::memory`], append command-line words ([`Vm::append_cmdline`]).
    fn before_boot(&mut self, _vm: &mut Vm) -> Result<(), Error> {
        Ok(())
    }

    /// Where COM1 output goes. Default: stdout.
    fn serial_output(&mut self) -> Box<dyn Write + Send> {
        Box::new(std::io::stdout())
    }
}

/// No extensions: serial to stdout, no extra devices.
pub struct NoHooks;
impl RunHooks for NoHooks {}
