//! `mobius record`: run a workload or PROGRAM with fault recording on and
//! stream the records into the data file.
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::elf::ElfInfo;
use super::error::RecordError;
use super::file::{fnv1a, Header, Program, Writer, KERNEL};
use super::sink::Sink;
use crate::boot::initramfs::is_program_word;
use crate::cli::RecordArgs;
use crate::stats::command::{summary_line, target_of};
use crate::stats::StatsHooks;
use crate::{run_vm, Stop};

/// `mobius record`: the exit status (the run's, or the error's).
pub fn record(args: &RecordArgs) -> i32 {
    match run_record(args) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("mobius: error: {e}");
            e.exit_status()
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn run_record(args: &RecordArgs) -> Result<i32, RecordError> {
    if args.workload.is_empty() {
        return Err(RecordError::NoWorkload);
    }
    let (title, cmdline, initramfs) =
        target_of(&args.workload, &args.run, None).map_err(RecordError::from)?;
    let header = Header {
        sample: args.sample,
        ring: args.ring,
        tsc_khz: 0,
        title: title.clone(),
        programs: programs(args),
    };
    let out = &args.output;
    let file = File::create(out).map_err(|e| RecordError::Write {
        path: out.clone(),
        source: e,
    })?;
    let fd = file.as_raw_fd();
    let writer = Writer::new(file, &header);
    let sink = Arc::new(Mutex::new(Sink::new(writer)));
    let mut config = args.run.config();
    config.cmdline = format!("{cmdline} record={} record_ring={}", args.sample, args.ring);
    config.initramfs = initramfs;
    // The records are written on the vCPU thread, under its filter.
    config.seccomp_write_fds.push(fd);
    let mut hooks = StatsHooks::new();
    let to_sink = Arc::clone(&sink);
    hooks
        .collector
        .lock()
        .set_record_callback(Box::new(move |frame| lock(&to_sink).push(frame)));
    let outcome = run_vm(&config, &mut hooks)
        .map_err(|e| RecordError::from(crate::stats::StatError::Run(e)))?;
    let last = hooks.final_snapshot();
    let processes = last
        .as_ref()
        .and_then(|s| s.processes.as_ref())
        .map(|b| {
            b.records()
                .iter()
                .map(|r| (r.pid, r.name().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let status = outcome.exit_status();
    let mut sink = lock(&sink);
    let counts = sink.counts;
    let records = sink.records();
    let (_, size) = sink
        .finish(status, processes)
        .map_err(|e| RecordError::Write {
            path: out.clone(),
            source: e,
        })?;
    if let Some(line) = summary_line(last.as_ref()) {
        eprintln!("{line}");
    }
    if let Some(report) = outcome.stop.report() {
        eprintln!("{report}");
    }
    if !matches!(outcome.stop, Stop::Guest(0)) && !counts.final_frame {
        eprintln!("mobius: warning: the guest sent no final record frame: the counts may be short");
    }
    eprintln!(
        "[ mobius record: wrote {records} records of {} faults seen (1 in {}), {} dropped, to {} ({:.3} MB) ]",
        counts.seen,
        args.sample,
        counts.dropped,
        out.display(),
        size as f64 / 1e6
    );
    Ok(status)
}

/// The programs whose instruction pointers a report can resolve: the
/// kernel, PROGRAM and every `--file` that is an ELF file.
fn programs(args: &RecordArgs) -> Vec<Program> {
    let mut out = Vec::new();
    match &args.run.kernel {
        Some(path) => out.extend(program(KERNEL, path)),
        None => out.push(describe(KERNEL, String::new(), crate::BUNDLED_KERNEL)),
    }
    if let Some(word) = args.workload.first() {
        if is_program_word(std::ffi::OsStr::new(word)) {
            let path = Path::new(word);
            if let Some(name) = path.file_name() {
                let guest = format!(
                    "/{}/{}",
                    mobius_shared::initramfs::PROGRAM_DIR,
                    name.to_string_lossy()
                );
                out.extend(program(&guest, path));
            }
        }
    }
    for f in &args.run.archive.files {
        let guest = if f.guest.ends_with('/') {
            let name = f.host.file_name().map(|n| n.to_string_lossy().into_owned());
            format!("{}{}", f.guest, name.unwrap_or_default())
        } else {
            f.guest.clone()
        };
        out.extend(program(&guest, &f.host));
    }
    out
}

/// `path` as a program seen at `guest`, if it is a readable ELF file.
fn program(guest: &str, path: &Path) -> Option<Program> {
    let bytes = std::fs::read(path).ok()?;
    ElfInfo::parse(&bytes)?;
    let host = std::fs::canonicalize(path).unwrap_or_else(|_| PathBuf::from(path));
    Some(describe(guest, host.to_string_lossy().into_owned(), &bytes))
}

fn describe(guest: &str, host: String, bytes: &[u8]) -> Program {
    Program {
        guest_path: guest.to_string(),
        host_path: host,
        size: bytes.len() as u64,
        hash: fnv1a(bytes),
        build_id: ElfInfo::parse(bytes)
            .map(|e| e.build_id)
            .unwrap_or_default(),
    }
}

/// The kernel a record file's `[kernel]` entry names, if this `mobius`
/// can read it: the bundled one, or the file at its path.
pub fn kernel_bytes(p: &Program) -> Option<std::borrow::Cow<'static, [u8]>> {
    if p.host_path.is_empty() {
        return Some(std::borrow::Cow::Borrowed(crate::BUNDLED_KERNEL));
    }
    std::fs::read(&p.host_path)
        .ok()
        .map(std::borrow::Cow::Owned)
}
