//! `mobius`: boots the Möbius guest kernel in a KVM microVM.
//!
//! The library is what the `mobius` binary runs, and what other subcommands
//! and the integration tests reuse: build a [`RunConfig`] (or get one from
//! [`cli::RunArgs::config`]), call [`run_vm`] with [`RunHooks`] to plug
//! devices in, and get a [`RunOutcome`] back: how the guest stopped, the VM
//! exits by reason, and the phase times.
//!
//! # In your own tests
//!
//! A Rust test can boot a built-in workload (`mobius list`) and assert on
//! the page faults the guest's VMM counted. [`StatsHooks`] offers the guest
//! its statistics console and keeps the snapshot it sends at exit
//! ([`Snapshot`]: counts and cycles per [`FaultKind`], frames, nodes). The
//! workloads' exact counts are in `mobius_shared::workloads`.
//!
//! ```no_run
//! use mobius::{run_vm, FaultKind, RunConfig, StatsHooks, Stop};
//!
//! let config = RunConfig {
//!     cmdline: "workload=seq-touch pages=100".into(),
//!     ..RunConfig::default()
//! };
//! let mut hooks = StatsHooks::new();
//! let outcome = run_vm(&config, &mut hooks)?;
//! assert_eq!(outcome.stop, Stop::Guest(0));
//! let snapshot = hooks.final_snapshot().expect("the guest sent its statistics");
//! assert_eq!(snapshot.faults[FaultKind::DemandZero.index()].count, 100);
//! assert_eq!(snapshot.total_faults(), 100);
//! # Ok::<(), mobius::Error>(())
//! ```
//!
//! Runs need `/dev/kvm` (read-write); without it [`run_vm`] returns an
//! [`Error`] whose [`Error::exit_status`] is 69. `host/examples/count_faults.rs`
//! is the same as a program (`cargo run -p mobius --example count_faults`).
//! For counters in `mobius stat`'s terms (`page-faults`, `exits`,
//! `time.total`, ...) see [`stats::events`].

pub mod boot;
pub mod cli;
mod config;
pub mod devices;
pub mod error;
mod outcome;
pub mod record;
pub mod seccomp;
pub mod stats;
mod stop;
pub mod syscalls;
pub mod vm;

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mobius_shared::boot_params::BootParams;

pub use boot::BootMode;
pub use config::{KernelSource, NoHooks, RunConfig, RunHooks};
pub use error::Error;
pub use outcome::{RunOutcome, Stop, Timings};
pub use seccomp::Seccomp;
pub use stats::{FaultKind, Snapshot, StatsHooks};
pub use vm::exits::ExitCounts;
pub use vm::Vm;

use boot::image::KernelImage;
use devices::serial::SerialPort;
use vm::run::{VcpuRunner, VcpuStop};

/// How often the run loop looks for a halted vCPU when KVM emulates the
/// APIC (HLT then stays in KVM_RUN): a halted guest is reported after two
/// ticks, against one extra exit per tick (~0.1 % of a long run here).
const HALT_WATCH_PERIOD: Duration = Duration::from_millis(10);

/// The guest kernel ELF built by `build.rs` and carried inside this binary.
pub static BUNDLED_KERNEL: &[u8] = include_bytes!(env!("MOBIUS_GUEST_ELF_PATH"));

/// The kernel's name in messages and its image; a file is opened, not read.
fn open_kernel(source: &KernelSource) -> Result<(String, KernelImage<'static>), Error> {
    match source {
        KernelSource::Bundled => Ok(("(bundled)".to_string(), KernelImage::bytes(BUNDLED_KERNEL))),
        KernelSource::Path(path) => {
            let image = KernelImage::open(path).map_err(|source| boot::BootError::Read {
                path: path.clone(),
                source,
            })?;
            Ok((path.display().to_string(), image))
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
        xstate: true,
        stdin: true,
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
/// `Ok(RunOutcome)`. The vCPU runs on the calling thread. Installs
/// process-wide SIGINT/SIGTERM handlers (a signal stops the run with
/// [`Stop::Interrupted`]); with [`RunConfig::seccomp`] on, also confines the
/// calling thread for good.
///
/// ```no_run
/// use std::time::Duration;
/// use mobius::{run_vm, NoHooks, RunConfig, Stop};
///
/// // The guest's `exit` workload ends with the status it is given.
/// let config = RunConfig {
///     cmdline: "workload=exit code=3".into(),
///     timeout: Some(Duration::from_secs(10)),
///     ..RunConfig::default()
/// };
/// let outcome = run_vm(&config, &mut NoHooks)?;
/// assert_eq!(outcome.stop, Stop::Guest(3));
/// println!("{} VM exits, {:?} in all", outcome.exits.total(), outcome.timings.total);
/// # Ok::<(), mobius::Error>(())
/// ```
pub fn run_vm(config: &RunConfig, hooks: &mut dyn RunHooks) -> Result<RunOutcome, Error> {
    let start = Instant::now();
    let mut timings = Timings::default();

    let (name, mut image) = open_kernel(&config.kernel)?;
    let info = boot::elf::check(&name, &image, config.memory)?;
    if let Some(archive) = &config.initramfs {
        // Fail before KVM is opened, as for a kernel too large.
        boot::params::module_addr(config.memory, info.end, archive.len() as u64)?;
    }
    // Like the kernel, disks are checked before KVM is opened.
    let images = devices::virtio::disk::DiskImage::open_all(&config.disks)?;
    let t = Instant::now();
    timings.kernel_read = t - start;

    let mut vm = Vm::new(&config.kvm_device, config.memory)?;
    hooks.before_boot(&mut vm)?;
    let disks = add_disks(&mut vm, images, config.seccomp != Seccomp::Off)?;
    let t_vm = Instant::now();
    timings.vm_create = t_vm - t;

    let kernel = boot::elf::load(&name, &mut image, &info, vm.memory(), vm.ram_size())?;
    drop(image);
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
    let mut write_fds = config.seccomp_write_fds.clone();
    write_fds.extend(disks.iter().map(|d| d.kick_fd));
    seccomp::install(config.seccomp, &write_fds, !disks.is_empty())?;
    timings.seccomp = t_filter.elapsed();
    seccomp::probe(runner.vcpu.as_raw_fd());
    let report = runner.run();
    // The bus, and with it every disk's worker, is gone: its counts are final.
    let disks: Vec<_> = disks.into_iter().map(AddedDisk::report).collect();
    for line in disks.iter().filter_map(|d| d.warning()) {
        eprintln!("{line}");
    }
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
        disks,
    })
}

/// A disk on the bus, as `run_vm` keeps track of it.
struct AddedDisk {
    index: usize,
    path: std::path::PathBuf,
    kick_fd: std::os::fd::RawFd,
    counters: std::sync::Arc<std::sync::Mutex<devices::virtio::disk::DiskCounters>>,
}

impl AddedDisk {
    fn report(self) -> devices::virtio::disk::DiskReport {
        let counters = match self.counters.lock() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        };
        devices::virtio::disk::DiskReport {
            index: self.index,
            path: self.path,
            counters,
        }
    }
}

/// Put each disk on its window with its worker started (confined when
/// `confine`), and announce it to the guest with its vector.
fn add_disks(
    vm: &mut Vm,
    images: Vec<devices::virtio::disk::DiskImage>,
    confine: bool,
) -> Result<Vec<AddedDisk>, Error> {
    use devices::virtio::block::{BlockDevice, Msi};
    use mobius_shared::layout::MMIO_DEVICE_SIZE;
    use mobius_shared::virtio_mmio::{disk_vector, disk_window};
    let mut added = Vec::new();
    for (index, image) in images.into_iter().enumerate() {
        let path = image.path.clone();
        let irq = Msi {
            vm: vm.shared_fd(),
            vector: disk_vector(index),
        };
        let device = BlockDevice::spawn(
            index,
            std::sync::Arc::new(image),
            vm.memory().clone(),
            Box::new(irq),
            confine,
        )
        .map_err(|e| Error::Host(format!("disk {index}: cannot start its worker: {e}")))?;
        added.push(AddedDisk {
            index,
            path,
            kick_fd: device.kick_fd(),
            counters: device.counters(),
        });
        let transport = devices::virtio::MmioTransport::with_device(device, vm.memory().clone());
        let base = disk_window(index);
        vm.add_mmio_device(base, MMIO_DEVICE_SIZE, Box::new(transport))?;
        vm.announce_virtio_mmio(base, MMIO_DEVICE_SIZE, u32::from(disk_vector(index)));
    }
    Ok(added)
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
