//! Command-line interface: `mobius run ...`. [`RunArgs`] is a flattenable
//! group so that other subcommands (e.g. `stat`) take the same run options,
//! and [`ArchiveArgs`] (what goes into the initramfs) is one inside it, so
//! that `pack` takes it too.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use mobius_shared::layout::{MEMORY_MAX, MEMORY_MIN};

use crate::boot::initramfs::{self, ArchiveSpec, FileSpec, InitramfsError};
use crate::boot::BootMode;
use crate::devices::virtio::disk::{DiskConfig, FailRange};
use crate::{KernelSource, RunConfig, Seccomp};

#[derive(Debug, Parser)]
#[command(
    name = "mobius",
    version,
    about = "Boot the Möbius guest kernel in a KVM microVM"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot the guest kernel and run it (or PROGRAM in it) to completion; the exit status is the guest's.
    Run(RunCmd),
    /// Run a workload or PROGRAM in the guest and report its page-fault counters like `perf stat`.
    Stat(StatArgs),
    /// Run a workload or PROGRAM and record its page faults to a file, like `perf record -e page-faults`.
    Record(RecordArgs),
    /// Print the faults of a `mobius record` file by area, process and function, like `perf report`.
    Report(ReportArgs),
    /// Write the initramfs for PROGRAM to FILE without booting (for QEMU's -initrd).
    Pack(PackArgs),
    /// List the workloads the guest offers, with their parameters.
    List,
}

/// `mobius run [options] [-- PROGRAM [ARGS...]]`.
#[derive(Debug, Clone, Args)]
pub struct RunCmd {
    #[command(flatten)]
    pub run: RunArgs,
    /// A host x86-64 executable to run in the guest, and its arguments
    #[arg(last = true, value_name = "PROGRAM [ARGS]")]
    pub program: Vec<OsString>,
}

impl RunCmd {
    /// The run configuration, with the initramfs packed from the host
    /// files it names (none when it names none).
    pub fn config(&self) -> Result<RunConfig, InitramfsError> {
        let mut config = self.run.config();
        config.initramfs = self
            .run
            .archive
            .spec(&self.program, &self.run.disks)
            .build()?;
        Ok(config)
    }
}

/// `mobius pack -o FILE [--file ...] [--env ...] [--initrd ...] -- PROGRAM [ARGS...]`.
#[derive(Debug, Clone, Args)]
pub struct PackArgs {
    /// Write the archive to FILE ('-' for stdout)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    #[command(flatten)]
    pub archive: ArchiveArgs,
    /// The host x86-64 executable to pack, and its arguments
    #[arg(last = true, required = true, value_name = "PROGRAM [ARGS]")]
    pub program: Vec<OsString>,
}

/// What goes into the guest's initramfs besides PROGRAM.
#[derive(Debug, Clone, Default, Args)]
pub struct ArchiveArgs {
    /// Copy host file HOST into the guest at GUEST (default /NAME; GUEST ending in '/' is a directory); repeatable
    #[arg(long = "file", value_name = "HOST[:GUEST]", value_parser = parse_file_spec)]
    pub files: Vec<FileSpec>,
    /// Set an environment variable of PROGRAM; repeatable
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<String>,
    /// A newc cpio archive of your own; the host's entries are added after its entries
    #[arg(long, value_name = "ARCHIVE")]
    pub initrd: Option<PathBuf>,
}

impl ArchiveArgs {
    /// What to pack with `program` (PROGRAM and its arguments; may be
    /// empty), for a run with `disks` (PROGRAM may be on the first one).
    pub fn spec(&self, program: &[OsString], disks: &[DiskConfig]) -> ArchiveSpec {
        ArchiveSpec {
            program: program.to_vec(),
            files: self.files.clone(),
            env: self.env.clone(),
            initrd: self.initrd.clone(),
            program_on_disk: initramfs::program_on_disk(
                program.first().map(OsString::as_os_str),
                disks,
            ),
            misplaced_root: disks
                .iter()
                .skip(1)
                .find(|d| d.root)
                .map(|d| d.path.clone()),
        }
    }
}

fn parse_file_spec(s: &str) -> Result<FileSpec, String> {
    s.parse().map_err(|e| match e {
        InitramfsError::BadFileSpec { why, .. } => why,
        other => other.to_string(),
    })
}

fn parse_env(s: &str) -> Result<String, String> {
    match initramfs::check_env(s) {
        Ok(()) => Ok(s.to_string()),
        Err(InitramfsError::BadEnv(_)) => Err("expected KEY=VALUE with a non-empty KEY".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// `mobius stat [options] -- WORKLOAD|PROGRAM [ARGS...]`.
#[derive(Debug, Clone, Args)]
#[command(trailing_var_arg = true)]
pub struct StatArgs {
    /// Events to report, comma separated, in that order (see `mobius stat
    /// --list-events`; syscalls* only for runs of programs); without -e:
    /// faults, faults.*, frames.free, frames.used, frames.zeroed, frames.free-errors,
    /// nodes.areas, syscalls*, exits, time.*
    #[arg(
        short = 'e',
        long = "event",
        value_name = "EVENTS",
        value_delimiter = ','
    )]
    pub events: Vec<String>,
    /// CSV with this field separator, in perf stat's field order
    #[arg(short = 'x', long = "field-separator", value_name = "SEP")]
    pub separator: Option<String>,
    /// JSON Lines like perf stat -j: one object per counter
    #[arg(
        short = 'j',
        long = "json",
        visible_alias = "json-output",
        conflicts_with = "separator"
    )]
    pub json: bool,
    /// Write the counters to FILE instead of standard error
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Append to the -o FILE instead of replacing it
    #[arg(long, requires = "output")]
    pub append: bool,
    /// Repeat the run N times and report mean and relative stddev
    #[arg(short = 'r', long = "repeat", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeat: u32,
    /// Print the guest's counters every MS milliseconds of guest time (at most once per MS of host time), time-stamped
    #[arg(short = 'I', long = "interval-print", value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub interval: Option<u64>,
    /// With -I: also print the totals at the end (CSV lines start with 'summary')
    #[arg(long)]
    pub summary: bool,
    /// After the counters, one line per process of a run of programs: pid,
    /// parent, status, system calls, ENOSYS calls, ring-3 page faults, CPU
    /// msec, name (with -x: lines starting '#process', with -j: objects of
    /// their own; with -r: the last run's)
    #[arg(long)]
    pub per_process: bool,
    /// Also print the log2 histogram of cycles per fault for each fault kind
    #[arg(long, conflicts_with_all = ["separator", "json"])]
    pub histogram: bool,
    /// Fail (exit status 100) if, after the run, EVENT OP NUMBER holds (OP: > >= < <= == !=), e.g. 'page-faults > 1000'; repeatable
    #[arg(long = "fail-if", value_name = "EXPR", value_parser = crate::stats::budget::parse)]
    pub fail_if: Vec<crate::stats::budget::Budget>,
    /// List every event with its meaning and exit
    #[arg(long)]
    pub list_events: bool,
    /// Do not offer the virtio console: the guest sends statistics over serial
    #[arg(long, hide = true)]
    pub serial_stats: bool,
    #[command(flatten)]
    pub run: RunArgs,
    /// The workload and its KEY=VALUE parameters (see `mobius list`), or a
    /// PROGRAM (a word with a '/' or naming an existing file) and its arguments
    #[arg(value_name = "WORKLOAD [KEY=VALUE]...|PROGRAM [ARGS]...")]
    pub workload: Vec<String>,
}

/// `mobius record [-o FILE] [--sample N] [run options] -- WORKLOAD|PROGRAM [ARGS...]`.
#[derive(Debug, Clone, Args)]
#[command(trailing_var_arg = true)]
pub struct RecordArgs {
    /// Write the records to FILE
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        default_value = "mobius.data"
    )]
    pub output: PathBuf,
    /// Record one fault in N (the first, then every Nth)
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub sample: u32,
    /// The guest's record ring, in records (faults between two drains beyond it are dropped, counted)
    #[arg(long, value_name = "RECORDS", default_value_t = mobius_shared::record::DEFAULT_RING,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(mobius_shared::record::MAX_RING)))]
    pub ring: u32,
    #[command(flatten)]
    pub run: RunArgs,
    /// The workload and its KEY=VALUE parameters (see `mobius list`), or a
    /// PROGRAM (a word with a '/' or naming an existing file) and its arguments
    #[arg(value_name = "WORKLOAD [KEY=VALUE]...|PROGRAM [ARGS]...")]
    pub workload: Vec<String>,
}

/// `mobius report [-i FILE] [--sort KEYS] [--svg OUT.svg]`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The file `mobius record` wrote
    #[arg(
        short = 'i',
        long = "input",
        value_name = "FILE",
        default_value = "mobius.data"
    )]
    pub input: PathBuf,
    /// Tables to print, comma separated, in that order: area, process, symbol [default: all three]
    #[arg(short = 's', long = "sort", value_name = "KEYS", value_delimiter = ',')]
    pub sort: Vec<String>,
    /// Also draw a heat map of faults over address and time to OUT.svg
    #[arg(long, value_name = "OUT.svg")]
    pub svg: Option<PathBuf>,
}

/// Options shared by every subcommand that boots a guest.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Guest kernel ELF [default: the kernel bundled in this binary]
    #[arg(long, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// Guest memory size: bytes, or with a K/M/G suffix (binary units), e.g. 128M, 1G
    #[arg(long, short = 'm', value_name = "SIZE", default_value = "128M", value_parser = parse_memory)]
    pub memory: u64,
    /// Kernel command line (the host appends tsc_khz= and discard=1)
    #[arg(long, value_name = "STR", default_value = "")]
    pub cmdline: String,
    /// Stop the guest after this long, e.g. 500ms, 10s, 2m (exit status 124)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Entry: 64-bit long mode with host-built page tables, or the 32-bit PVH entry
    #[arg(long, value_enum, default_value_t = BootMode::Long)]
    pub boot: BootMode,
    /// Print host phase times to stderr
    #[arg(long)]
    pub timings: bool,
    /// Do not confine mobius with its seccomp filter (for debugging)
    #[arg(long)]
    pub no_seccomp: bool,
    /// A virtio-blk disk backed by the file PATH (size a multiple of 512), read-only unless ',rw'; repeatable (at most 3). The first disk's ext4 file system is at /mnt, or at / with ',root' or when PROGRAM is an absolute path that is not a host file (PROGRAM then runs from the disk)
    #[arg(long = "disk", value_name = "PATH[,rw][,root]", value_parser = DiskConfig::parse)]
    pub disks: Vec<DiskConfig>,
    /// Make reads of these sectors of every --disk fail (VIRTIO_BLK_S_IOERR, counted); repeatable
    #[arg(long = "disk-fail", value_name = "SECTOR[-SECTOR]", value_parser = FailRange::parse, requires = "disks")]
    pub disk_fail: Vec<FailRange>,
    /// KVM device (for testing)
    #[arg(long, value_name = "PATH", default_value = "/dev/kvm", hide = true)]
    pub kvm_device: PathBuf,
    #[command(flatten)]
    pub archive: ArchiveArgs,
}

impl RunArgs {
    /// The validated run configuration, without an initramfs (see
    /// [`RunCmd::config`] and [`ArchiveArgs::spec`] for one).
    pub fn config(&self) -> RunConfig {
        RunConfig {
            kernel: match &self.kernel {
                Some(p) => KernelSource::Path(p.clone()),
                None => KernelSource::Bundled,
            },
            memory: self.memory,
            cmdline: self.cmdline.clone(),
            timeout: self.timeout,
            boot: self.boot,
            kvm_device: self.kvm_device.clone(),
            kvm_stats: false,
            initramfs: None,
            seccomp: if self.no_seccomp {
                Seccomp::Off
            } else {
                Seccomp::Vcpu
            },
            seccomp_write_fds: Vec::new(),
            disks: self
                .disks
                .iter()
                .map(|d| DiskConfig {
                    fail: self.disk_fail.clone(),
                    ..d.clone()
                })
                .collect(),
        }
    }
}

/// Whether a command-line error is about `--disk` or `--disk-fail`'s
/// value (exit status [`BAD_DISK`](mobius_shared::exit::host::BAD_DISK)
/// rather than a usage error).
pub fn is_disk_value_error(e: &clap::Error) -> bool {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    e.kind() == ErrorKind::ValueValidation
        && matches!(
            e.get(ContextKind::InvalidArg),
            Some(ContextValue::String(arg)) if arg.starts_with("--disk ") || arg.starts_with("--disk-fail ")
        )
}

fn format_size(bytes: u64) -> String {
    match bytes {
        b if b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b => format!("{b} bytes"),
    }
}

/// Parse a memory size: `134217728`, `128M`, `128MiB`, `1G`, `4096K`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    if digits.is_empty() {
        return Err(format!(
            "'{s}' is not a size (use bytes or a K/M/G suffix, e.g. 128M)"
        ));
    }
    let n: u64 = digits.parse().map_err(|_| format!("'{s}' is too large"))?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(format!(
                "'{s}' has an unknown unit '{suffix}' (use K, M or G)"
            ))
        }
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("'{s}' is too large"))
}

/// Parse and range-check a guest memory size.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let n = parse_size(s)?;
    if n < MEMORY_MIN {
        return Err(format!(
            "{} is too small; the minimum is {}",
            format_size(n),
            format_size(MEMORY_MIN)
        ));
    }
    if n > MEMORY_MAX {
        return Err(format!(
            "{} is too large; guest memory is limited to {} ({MEMORY_MAX:#x}, below the MMIO hole)",
            format_size(n),
            format_size(MEMORY_MAX)
        ));
    }
    if n % mobius_shared::layout::PAGE_SIZE != 0 {
        return Err(format!(
            "{n} bytes is not a multiple of the 4 KiB page size"
        ));
    }
    Ok(n)
}

/// Parse a duration: `500ms`, `10s`, `2m`, `1h`, `1.5s`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (e.g. 500ms, 10s, 2m)"))?;
    let scale = match unit {
        "" | "s" | "sec" => 1.0,
        "ms" => 1e-3,
        "us" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "'{s}' has an unknown unit '{unit}' (use ms, s, m or h)"
            ))
        }
    };
    let secs = value * scale;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(format!("'{s}' is not a positive duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("128M"), Ok(128 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("99999999999G").is_err());
        assert!(parse_memory("1M").unwrap_err().contains("too small"));
        assert!(parse_memory("4G").unwrap_err().contains("3 GiB"));
        assert_eq!(parse_memory("3G"), Ok(3 << 30));
        assert!(parse_memory("4194305").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli =
            Cli::try_parse_from(["mobius", "run", "--memory", "256M", "--boot", "pvh"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("expected run");
        };
        assert_eq!(args.run.memory, 256 << 20);
        assert_eq!(args.run.boot, BootMode::Pvh);
        assert!(args.program.is_empty());
        // Without a program there is no initramfs.
        assert!(args.config().unwrap().initramfs.is_none());
        // The seccomp filter is on unless --no-seccomp.
        assert_eq!(args.config().unwrap().seccomp, Seccomp::Vcpu);
        let cli = Cli::try_parse_from(["mobius", "run", "--no-seccomp"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("expected run");
        };
        assert_eq!(args.config().unwrap().seccomp, Seccomp::Off);
    }

    #[test]
    fn disks_and_their_failing_sectors() {
        let cli = Cli::try_parse_from([
            "mobius",
            "run",
            "--disk",
            "a.img",
            "--disk-fail",
            "7",
            "--disk",
            "b.img,rw",
            "--disk-fail",
            "10-20",
            "--disk",
            "c.img,rw,ro",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("expected run");
        };
        let config = args.config().unwrap();
        let fail = vec![
            FailRange { first: 7, last: 7 },
            FailRange {
                first: 10,
                last: 20,
            },
        ];
        // --disk-fail applies to every disk, wherever it is given.
        assert_eq!(
            config.disks,
            [
                DiskConfig {
                    path: "a.img".into(),
                    writable: false,
                    root: false,
                    fail: fail.clone()
                },
                DiskConfig {
                    path: "b.img".into(),
                    writable: true,
                    root: false,
                    fail: fail.clone()
                },
                DiskConfig {
                    path: "c.img".into(),
                    writable: false,
                    root: false,
                    fail
                },
            ]
        );
        // stat takes them too.
        let cli =
            Cli::try_parse_from(["mobius", "stat", "--disk", "d.img,rw", "--", "hello"]).unwrap();
        let Command::Stat(args) = cli.command else {
            panic!("expected stat");
        };
        assert!(args.run.config().disks[0].writable);
        assert!(Cli::try_parse_from(["mobius", "run"])
            .map(|c| matches!(c.command, Command::Run(a) if a.config().unwrap().disks.is_empty()))
            .unwrap());
    }

    #[test]
    fn bad_disk_values_are_disk_errors() {
        for args in [
            &["--disk", "a.img,rx"][..],
            &["--disk", ""],
            &["--disk", ",rw"],
            &["--disk", "a.img,"],
            &["--disk", "a", "--disk-fail", "x"],
            &["--disk", "a", "--disk-fail", "9-3"],
            &["--disk", "a", "--disk-fail=-3"],
            &["--disk", "a", "--disk-fail", "3-"],
            &["--disk", "a", "--disk-fail", "99999999999999999999999"],
        ] {
            let e = Cli::try_parse_from(["mobius", "run"].iter().chain(args)).unwrap_err();
            assert!(is_disk_value_error(&e), "{args:?}: {e}");
        }
        // --disk-fail without a disk is a usage error; so is any other bad value.
        let e = Cli::try_parse_from(["mobius", "run", "--disk-fail", "3"]).unwrap_err();
        assert!(!is_disk_value_error(&e));
        let e = Cli::try_parse_from(["mobius", "run", "--memory", "x"]).unwrap_err();
        assert!(!is_disk_value_error(&e));
        assert_eq!(
            DiskConfig::parse("a,b").unwrap_err(),
            "unknown disk option 'b' (the options are rw, ro and root)"
        );
        assert_eq!(FailRange::parse("5"), Ok(FailRange { first: 5, last: 5 }));
    }

    #[test]
    fn run_takes_a_program_and_archive_options() {
        let cli = Cli::try_parse_from([
            "mobius",
            "run",
            "--file",
            "data.txt",
            "--file",
            "in.txt:/etc/",
            "--env",
            "HOME=/",
            "--env",
            "K=a=b",
            "--initrd",
            "user.cpio",
            "-m",
            "64M",
            "--",
            "./hello",
            "--flag",
            "-x",
            "--",
            "world",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("expected run");
        };
        assert_eq!(args.run.memory, 64 << 20);
        assert_eq!(args.program, ["./hello", "--flag", "-x", "--", "world"]);
        let a = &args.run.archive;
        let guests: Vec<&str> = a.files.iter().map(|f| f.guest.as_str()).collect();
        assert_eq!(guests, ["/data.txt", "/etc/in.txt"]);
        assert_eq!(a.env, ["HOME=/", "K=a=b"]);
        assert_eq!(a.initrd, Some(PathBuf::from("user.cpio")));
        let spec = a.spec(&args.program, &[]);
        assert_eq!(spec.program.len(), 5);

        // Bad words are usage errors at parse time.
        for bad in [
            &["run", "--env", "NOVALUE"][..],
            &["run", "--env", "=x"],
            &["run", "--file", "a:relative"],
            &["run", "--file", "a:/x/../y"],
            &["run", "./hello"], // PROGRAM only after --
        ] {
            let words = std::iter::once("mobius").chain(bad.iter().copied());
            assert!(Cli::try_parse_from(words).is_err(), "{bad:?}");
        }
        // A word that is not a program: "no such program", not a workload.
        let cli = Cli::try_parse_from(["mobius", "run", "--", "hello"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("expected run");
        };
        let err = args.config().unwrap_err();
        assert!(err.to_string().contains("no such program 'hello'"), "{err}");
        assert_eq!(
            crate::Error::from(err).exit_status(),
            mobius_shared::exit::host::USAGE
        );
    }

    #[test]
    fn pack_needs_output_and_program() {
        let cli = Cli::try_parse_from([
            "mobius", "pack", "-o", "out.cpio", "--env", "A=1", "--", "./prog", "arg",
        ])
        .unwrap();
        let Command::Pack(args) = cli.command else {
            panic!("expected pack");
        };
        assert_eq!(args.output, PathBuf::from("out.cpio"));
        assert_eq!(args.program, ["./prog", "arg"]);
        assert_eq!(args.archive.env, ["A=1"]);
        assert!(Cli::try_parse_from(["mobius", "pack", "--", "./prog"]).is_err());
        assert!(Cli::try_parse_from(["mobius", "pack", "-o", "x"]).is_err());
        // pack boots nothing, so it takes no run options.
        assert!(
            Cli::try_parse_from(["mobius", "pack", "-o", "x", "-m", "64M", "--", "./p"]).is_err()
        );
    }

    #[test]
    fn stat_takes_run_options_and_a_workload() {
        let cli = Cli::try_parse_from([
            "mobius",
            "stat",
            "-x",
            ",",
            "-r",
            "3",
            "-e",
            "faults,exits",
            "--memory",
            "64M",
            "--",
            "seq-touch",
            "pages=10",
        ])
        .unwrap();
        let Command::Stat(args) = cli.command else {
            panic!("expected stat");
        };
        assert_eq!(args.separator.as_deref(), Some(","));
        assert_eq!(args.repeat, 3);
        assert_eq!(args.events, ["faults", "exits"]);
        assert_eq!(args.run.memory, 64 << 20);
        assert_eq!(args.workload, ["seq-touch", "pages=10"]);
        assert!(Cli::try_parse_from(["mobius", "stat", "-r", "0", "--", "hello"]).is_err());

        // A program and its arguments, with archive options.
        let cli = Cli::try_parse_from([
            "mobius", "stat", "--env", "A=1", "--file", "x", "--", "./prog", "-v", "pages=3",
        ])
        .unwrap();
        let Command::Stat(args) = cli.command else {
            panic!("expected stat");
        };
        assert_eq!(args.workload, ["./prog", "-v", "pages=3"]);
        assert_eq!(args.run.archive.env, ["A=1"]);
        assert_eq!(args.run.archive.files.len(), 1);
    }

    #[test]
    fn stat_help_names_exactly_the_default_events() {
        use clap::CommandFactory;
        let cmd = Cli::command();
        let stat = cmd.find_subcommand("stat").expect("stat");
        let help = stat
            .get_arguments()
            .find(|a| a.get_id() == "events")
            .and_then(|a| a.get_help())
            .expect("help")
            .to_string();
        let list = help.split("without -e: ").nth(1).expect("the default set");
        let all = crate::stats::catalogue::all();
        let named: Vec<String> = list
            .split(", ")
            .flat_map(|w| match w.strip_suffix('*') {
                Some(prefix) => all
                    .iter()
                    .filter(|e| e.name.starts_with(prefix))
                    .map(|e| e.name.clone())
                    .collect(),
                None => vec![w.to_string()],
            })
            .collect();
        assert_eq!(named, crate::stats::catalogue::default_names());
    }

    #[test]
    fn stat_output_options() {
        let cli = Cli::try_parse_from([
            "mobius",
            "stat",
            "-j",
            "-o",
            "out.json",
            "--append",
            "-I",
            "100",
            "--summary",
            "--",
            "hello",
        ])
        .unwrap();
        let Command::Stat(args) = cli.command else {
            panic!("expected stat");
        };
        assert!(args.json && args.append && args.summary);
        assert_eq!(args.output, Some(PathBuf::from("out.json")));
        assert_eq!(args.interval, Some(100));
        for bad in [
            &["stat", "--append", "--", "hello"][..],
            &["stat", "-j", "-x", ",", "--", "hello"],
            &["stat", "--histogram", "-j", "--", "hello"],
        ] {
            let words = std::iter::once("mobius").chain(bad.iter().copied());
            assert!(Cli::try_parse_from(words).is_err(), "{bad:?}");
        }
    }
}
