//! `mobius`: boots the Möbius guest kernel in a KVM microVM.
//!
//! The library is what the `mobius` binary runs, and what other subcommands
//! and the integration tests reuse: build a [`RunConfig`] (or get one from
//! [`cli::RunArgs::config`]), call [`run_vm`] with [`RunHooks`] to plug
//! devices in, and get a [`RunOutcome`] back: how the guest stopped, the VM
//! exits by reason, and the phase times.

pub mod boot;
pub mod cli;
pub mod devices;
pub mod error;
pub mod seccomp;
pub mod stats;
mod stop;
pub mod syscalls;
pub mod vm;

use std::borrow::Cow;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mobius_shared::boot_params::BootParams;
use mobius_shared::exit::host;

pub use boot::BootMode;
pub use error::Error;
pub use seccomp::Seccomp;
pub use stats::StatsHooks;
pub use vm::exits::ExitCounts;
pub use vm::Vm;

use devices::serial::SerialPort;
use vm::run::{VcpuRunner, VcpuStop};

/// How often the run loop looks for a halted vCPU when KVM emulates the
/// APIC (HLT then stays in KVM_RUN): a halted guest is reported after two
/// ticks, against one extra exit per tick (~0.1 % of a long run here).
const HALT_WATCH_PERIOD: Duration = Duration::from_millis(10);

/// The guest kernel ELF built by `build.rs` and carried inside this binary.
pub static BUNDLED_KERNEL: &[u8] = include_bytes!(env!("MOBIUS_GUEST_ELF_PATH"));

/// Which kernel to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSource {
    Bundled,
    Path(PathBuf),
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub kernel: KernelSource,
    /// Guest RAM in bytes, in `[MEMORY_MIN, MEMORY_MAX]`.
    pub memory: u64,
    /// The user's command line; the host appends `tsc_khz=` and `discard=1`,
    /// then whatever the hooks add.
    pub cmdline: String,
    pub timeout: Option<Duration>,
    pub boot: BootMode,
    pub kvm_device: PathBuf,
    /// Read KVM's per-vCPU statistics at the end ([`RunOutcome::kvm_stats`];
    /// `mobius stat` wants them, a plain run does not pay for them).
    pub kvm_stats: bool,
    /// A newc cpio archive handed to the guest as its PVH module, at the top
    /// of RAM ([`boot::initramfs::ArchiveSpec::build`] makes one).
    pub initramfs: Option<Vec<u8>>,
    /// The seccomp filter to install before the vCPU runs ([`seccomp`]);
    /// off by default, on in the `mobius` command unless `--no-seccomp`.
    pub seccomp: Seccomp,
    /// Open files the filter lets the vCPU thread `write` to besides stdout
    /// and stderr (`mobius stat -o FILE`, whose `-I` lines are written while
    /// the guest runs and whose report is written after the last run).
    pub seccomp_write_fds: Vec<std::os::fd::RawFd>,
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
        }
    }
}

/// Ways for a caller to extend a run.
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

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The guest wrote this status (<= GUEST_STATUS_MAX) to the debug-exit port.
    Guest(u32),
    /// The guest crashed (triple fault, HLT without status, failed entry,
    /// internal error, out-of-range status); the text is the report.
    Crash(String),
    /// `--timeout` expired.
    Timeout(Duration),
    /// Stopped by this signal (SIGINT/SIGTERM).
    Interrupted(i32),
}

/// Host phase times of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Reading and checking the kernel image.
    pub kernel_read: Duration,
    /// Opening KVM, creating the VM and guest memory.
    pub vm_create: Duration,
    /// Loading the ELF and writing GDT, page tables and start_info.
    pub load: Duration,
    /// Creating the vCPU, CPUID, TSC frequency, command line, registers.
    pub vcpu_setup: Duration,
    /// Building and installing the seccomp filter (zero without one).
    pub seccomp: Duration,
    /// First KVM_RUN to the first byte on the serial console.
    pub first_output: Option<Duration>,
    /// First KVM_RUN to the guest stopping.
    pub run: Duration,
    /// Start of [`run_vm`] to the first serial byte.
    pub boot_to_first_output: Option<Duration>,
    /// Start of [`run_vm`] to the guest stopping.
    pub total: Duration,
}

/// What [`run_vm`] returns once the guest has stopped.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub stop: Stop,
    pub exits: ExitCounts,
    pub timings: Timings,
    /// The TSC frequency handed to the guest, if KVM reported one.
    pub tsc_khz: Option<u32>,
    /// KVM's own per-vCPU statistics (`KVM_GET_STATS_FD`), empty if the
    /// kernel does not offer them.
    pub kvm_stats: Vec<(String, u64)>,
}

impl RunOutcome {
    /// The `mobius` process exit status for this outcome.
    pub fn exit_status(&self) -> i32 {
        match self.stop {
            Stop::Guest(status) => status as i32,
            Stop::Crash(_) => host::GUEST_CRASH,
            Stop::Timeout(_) => host::TIMEOUT,
            Stop::Interrupted(_) => host::INTERRUPTED,
        }
    }
}

fn read_kernel(source: &KernelSource) -> Result<(String, Cow<'static, [u8]>), Error> {
    match source {
        KernelSource::Bundled => Ok(("(bundled)".to_string(), Cow::Borrowed(BUNDLED_KERNEL))),
        KernelSource::Path(path) => {
            let bytes = std::fs::read(path).map_err(|source| boot::BootError::Read {
                path: path.clone(),
                source,
            })?;
            Ok((path.display().to_string(), Cow::Owned(bytes)))
        }
    }
}

/// The command line the guest gets: the user's, the host's words, the hooks'.
fn full_cmdline(user: &str, tsc_khz: Option<u32>, extra: &[String]) -> String {
    let mut words: Vec<String> = Vec::new();
    if !user.trim().is_empty() {
        words.push(user.trim().to_string());
    }
    if let Some(khz) = tsc_khz {
        words.push(format!("{}={khz}", mobius_shared::cmdline::TSC_KHZ));
    }
    words.push(format!("{}=1", mobius_shared::cmdline::DISCARD));
    words.extend(
        extra
            .iter()
            .map(|w| w.trim().to_string())
            .filter(|w| !w.is_empty()),
    );
    words.join(" ")
}

/// The boot parameters block for a command line built by [`full_cmdline`]:
/// the user's words come first, so their length is the trimmed line's.
fn boot_params(user: &str, tsc_khz: Option<u32>, virtio: &[u64]) -> BootParams {
    let user = user.trim();
    let mut p = BootParams {
        tsc_khz: tsc_khz.map_or(0, u64::from),
        discard: true,
        console: true,
        user_cmdline_len: user.len() as u32,
        // The kernel's own parser, run here: the kernel takes the result
        // instead of scanning the words in (emulated) ring 0.
        options: mobius_shared::cmdline::BootOptions::parse(user).to_parsed(user),
        ..BootParams::default()
    };
    for (slot, &base) in p.virtio.iter_mut().zip(virtio) {
        *slot = base;
        p.virtio_len += 1;
    }
    p
}

/// Boot the guest described by `config` and run it until it stops.
///
/// Errors are setup failures (bad kernel, bad configuration, no KVM); once
/// the vCPU runs, every ending (guest status, crash, timeout, signal) is an
/// `Ok(RunOutcome)`. Installs process-wide SIGINT/SIGTERM handlers.
pub fn run_vm(config: &RunConfig, hooks: &mut dyn RunHooks) -> Result<RunOutcome, Error> {
    let start = Instant::now();
    let mut timings = Timings::default();

    let (name, image) = read_kernel(&config.kernel)?;
    let info = boot::elf::check(&name, &image, config.memory)?;
    if let Some(archive) = &config.initramfs {
        // Fail before KVM is opened, as for a kernel too large.
        boot::params::module_addr(config.memory, info.end, archive.len() as u64)?;
    }
    let t = Instant::now();
    timings.kernel_read = t - start;

    let mut vm = Vm::new(&config.kvm_device, config.memory)?;
    hooks.before_boot(&mut vm)?;
    let t_vm = Instant::now();
    timings.vm_create = t_vm - t;

    let kernel = boot::elf::load(&name, &image, vm.memory(), vm.ram_size())?;
    let entry = match config.boot {
        BootMode::Long => kernel.entry,
        BootMode::Pvh => kernel
            .pvh_entry
            .ok_or_else(|| boot::BootError::NoPvhEntry(name.clone()))?,
    };
    let memory = vm.memory().clone();
    boot::params::write_gdt(&memory)?;
    if config.boot == BootMode::Long {
        boot::params::write_page_tables(&memory)?;
    }
    let module = config
        .initramfs
        .as_deref()
        .map(|data| boot::params::BootModule {
            data,
            kernel_end: kernel.end,
        });
    boot::params::write_start_info(&memory, vm.ram_size(), module)?;
    let t_load = Instant::now();
    timings.load = t_load - t_vm;

    let (vcpu, nx) = vm::vcpu::create(&vm)?;
    let tsc_khz = vm::vcpu::tsc_khz(&vcpu);
    // The command line carries the TSC frequency, known once the vCPU exists.
    boot::params::write_cmdline(
        &memory,
        &full_cmdline(&config.cmdline, tsc_khz, vm.cmdline_extra()),
    )?;
    boot::params::write_boot_params(
        &memory,
        &boot_params(&config.cmdline, tsc_khz, vm.virtio_windows()),
    )?;
    vm::vcpu::set_boot_state(&vcpu, config.boot, entry, nx)?;
    vm::signal::install().map_err(Error::Host)?;
    let mut runner = VcpuRunner::new(
        vcpu,
        memory,
        vm.ram_size(),
        SerialPort::new(hooks.serial_output()),
        vm.take_mmio(),
    );
    runner.read_kvm_stats = config.kvm_stats;
    let t_vcpu = Instant::now();
    timings.vcpu_setup = t_vcpu - t_load;

    // The vCPU runs on this thread; the timeout is a timer signal to it.
    let timer = match config.timeout {
        Some(d) => Some(
            vm::signal::ThreadTimer::timeout(d.saturating_sub(start.elapsed()))
                .map_err(|e| Error::Host(format!("cannot arm the timeout timer: {e}")))?,
        ),
        None => None,
    };
    let watch = if vm.lapic_in_kernel() {
        Some(
            vm::signal::ThreadTimer::halt_watch(HALT_WATCH_PERIOD)
                .map_err(|e| Error::Host(format!("cannot arm the halt watch: {e}")))?,
        )
    } else {
        None
    };
    // Set up: from here on the thread may only do what running takes.
    let t_filter = Instant::now();
    seccomp::install(config.seccomp, &config.seccomp_write_fds)?;
    timings.seccomp = t_filter.elapsed();
    seccomp::probe(runner.vcpu.as_raw_fd());
    let report = runner.run();
    drop(watch);
    drop(timer);
    drop(vm);

    let stop = match report.stop {
        VcpuStop::Exit(status) => Stop::Guest(status),
        VcpuStop::Crash(text) => Stop::Crash(text),
        VcpuStop::Stopped => match (vm::signal::stop_requested(), config.timeout) {
            (Some(sig), _) => Stop::Interrupted(sig),
            (None, Some(timeout)) if vm::signal::timed_out() => Stop::Timeout(timeout),
            (None, _) => Stop::Interrupted(0),
        },
        VcpuStop::RunError(text) => return Err(Error::Host(text)),
    };
    timings.first_output = report
        .first_output
        .map(|t| t.saturating_duration_since(report.first_run));
    timings.run = report.done.saturating_duration_since(report.first_run);
    timings.boot_to_first_output = report
        .first_output
        .map(|t| t.saturating_duration_since(start));
    timings.total = report.done.saturating_duration_since(start);
    Ok(RunOutcome {
        stop,
        exits: report.exits,
        timings,
        tsc_khz,
        kvm_stats: report.kvm_stats,
    })
}

impl Timings {
    /// One line, `name=1.234ms` pairs, for `--timings`.
    pub fn line(&self) -> String {
        let ms = |d: Duration| format!("{:.3}ms", d.as_secs_f64() * 1e3);
        let opt = |d: Option<Duration>| d.map(ms).unwrap_or_else(|| "none".into());
        format!(
            "kernel={} vm_memory={} load={} vcpu={} seccomp={} first_run_to_output={} run={} total={}",
            ms(self.kernel_read),
            ms(self.vm_create),
            ms(self.load),
            ms(self.vcpu_setup),
            ms(self.seccomp),
            opt(self.first_output),
            ms(self.run),
            ms(self.total)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_params_point_at_the_users_words() {
        let user = " workload=hello ";
        let extra = ["virtio_mmio.device=4K@0xd0000000:5".to_string()];
        let line = full_cmdline(user, Some(2000), &extra);
        let p = boot_params(user, Some(2000), &[0xd000_0000]);
        assert_eq!(&line[..p.user_cmdline_len as usize], "workload=hello");
        assert_eq!((p.tsc_khz, p.discard), (2000, true));
        assert_eq!(&p.virtio[..p.virtio_len], &[0xd000_0000]);
        // The kernel gets the workload's name as a place in the line.
        let workload = p.options.and_then(|o| o.workload);
        assert_eq!(workload.and_then(|w| w.get(&line)), Some("hello"));
        let empty = boot_params("", None, &[]);
        assert_eq!((empty.user_cmdline_len, empty.tsc_khz), (0, 0));
    }

    #[test]
    fn cmdline_gets_host_words() {
        assert_eq!(full_cmdline("", Some(2000), &[]), "tsc_khz=2000 discard=1");
        assert_eq!(
            full_cmdline(
                " workload=hello ",
                None,
                &["virtio_mmio.device=4K@0xd0000000:5".into()]
            ),
            "workload=hello discard=1 virtio_mmio.device=4K@0xd0000000:5"
        );
    }
}
