//! `mobius stat` and `mobius list`.
use std::ffi::{OsStr, OsString};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mobius_shared::exit::host;
use mobius_shared::stats::{FaultKind, Snapshot, SnapshotReason};
use mobius_shared::workloads::{self, CATALOGUE};

use super::events::{self, Event};
use super::format;
use super::hooks::StatsHooks;
use super::interval::IntervalGate;
use crate::boot::initramfs::is_program_word;
use crate::cli::StatArgs;
use crate::{run_vm, RunOutcome, Seccomp, Stop};

/// `mobius list`: the workloads the guest offers.
pub fn list() -> i32 {
    println!("Workloads (mobius stat -- NAME [KEY=VALUE...]):\n");
    for w in CATALOGUE {
        println!("  {:<16} {}", w.name, w.description);
        for p in w.params {
            println!(
                "  {:<16}   {}={} ({}; {}..={})",
                "", p.name, p.default, p.help, p.min, p.max
            );
        }
    }
    0
}

/// The one-line fault summary `mobius run` prints at the end.
pub fn summary_line(snap: Option<&Snapshot>) -> Option<String> {
    let s = snap?;
    let kinds: Vec<String> = FaultKind::ALL
        .iter()
        .filter(|k| !matches!(k, FaultKind::ZeroPoolHit | FaultKind::ZeroPoolMiss))
        .filter(|k| s.faults[k.index()].count > 0)
        .map(|k| {
            let short = k.name().trim_start_matches("faults.");
            format!("{short} {}", s.faults[k.index()].count)
        })
        .collect();
    let detail = if kinds.is_empty() {
        String::new()
    } else {
        format!(" ({})", kinds.join(", "))
    };
    Some(format!(
        "mobius: guest page faults: {}{detail}; frames used {} of {}",
        s.total_faults(),
        s.frames.used,
        s.frames.total
    ))
}

/// What `stat` runs: its title, the guest command line, the initramfs.
type Target = (String, String, Option<Vec<u8>>);

/// The workload words or PROGRAM after `--`: a word with a '/' or naming an
/// existing file is a PROGRAM, packed into an initramfs; otherwise a
/// built-in workload.
fn target(args: &StatArgs) -> Result<Target, String> {
    let program = match args.workload.first() {
        Some(word) if is_program_word(OsStr::new(word)) => {
            args.workload.iter().map(OsString::from).collect()
        }
        _ => Vec::new(),
    };
    let (title, line) = if program.is_empty() {
        workload_cmdline(args)?
    } else {
        let mut line = args.run.cmdline.trim().to_string();
        if let Some(ms) = args.interval {
            line.push_str(&format!(" stats_interval_ms={ms}"));
        }
        (args.workload.join(" "), line.trim().to_string())
    };
    let initramfs = args
        .run
        .archive
        .spec(&program)
        .build()
        .map_err(|e| e.to_string())?;
    Ok((title, line, initramfs))
}

/// Check the workload words and build the guest command line for them.
fn workload_cmdline(args: &StatArgs) -> Result<(String, String), String> {
    let Some((name, params)) = args.workload.split_first() else {
        return Err(
            "no workload given: mobius stat [options] -- WORKLOAD [KEY=VALUE...] | PROGRAM [ARGS...] (see mobius list)"
                .into(),
        );
    };
    let w = workloads::find(name)
        .ok_or_else(|| format!("unknown workload '{name}' (see mobius list)"))?;
    for p in params {
        let (k, _) = p
            .split_once('=')
            .ok_or_else(|| format!("workload parameter '{p}' is not KEY=VALUE"))?;
        if !w.params.iter().any(|x| x.name == k) {
            return Err(format!(
                "workload {name} has no parameter '{k}' (see mobius list)"
            ));
        }
    }
    let words = params.join(" ");
    w.check(&words)
        .map_err(|e| format!("workload {name}: {e}"))?;
    let title = args.workload.join(" ");
    let mut line = args.run.cmdline.trim().to_string();
    line.push_str(&format!(" workload={name} {words}"));
    if let Some(ms) = args.interval {
        line.push_str(&format!(" stats_interval_ms={ms}"));
    }
    Ok((title, line.trim().to_string()))
}

fn check_events(wanted: &[String]) -> Result<(), String> {
    match wanted.iter().find(|w| !events::is_known(w)) {
        Some(bad) => Err(format!(
            "unknown event '{bad}' (see mobius stat --list-events)"
        )),
        None => Ok(()),
    }
}

/// One run: the outcome, the final snapshot, the decode errors.
struct Run {
    outcome: RunOutcome,
    last: Option<Snapshot>,
    errors: super::DecodeErrors,
    snapshots: u64,
    notifications: u64,
}

fn one_run(
    args: &StatArgs,
    cmdline: &str,
    initramfs: Option<&Vec<u8>>,
    run_id: u64,
    final_run: bool,
) -> Result<Run, i32> {
    let mut config = args.run.config();
    if config.seccomp != Seccomp::Off && !final_run {
        // This thread builds another VM after this one.
        config.seccomp = Seccomp::VcpuAndNextVm;
    }
    config.cmdline = format!("{cmdline} run_id={run_id}");
    config.initramfs = initramfs.cloned();
    config.kvm_stats = true;
    let mut hooks = StatsHooks::new();
    hooks.console_to_stderr = args.json;
    hooks.virtio = !args.serial_stats;
    hooks.collector.lock().expect_run_id(run_id);
    let gate = args.interval.map(|ms| {
        let gate = Arc::new(Mutex::new(IntervalGate::new(Duration::from_millis(ms))));
        let sep = args.separator.clone();
        let shared = gate.clone();
        hooks.collector.lock().set_callback(Box::new(move |s| {
            let mut gate = shared.lock().unwrap_or_else(|p| p.into_inner());
            if s.reason == SnapshotReason::Interval && gate.admit(Instant::now()) {
                eprintln!("{}", format::interval_line(s, sep.as_deref()));
            }
        }));
        gate
    });
    let outcome = run_vm(&config, &mut hooks).map_err(|e| {
        eprintln!("mobius: error: {e}");
        e.exit_status()
    })?;
    let note = gate.and_then(|g| g.lock().unwrap_or_else(|p| p.into_inner()).summary());
    if let Some(note) = note {
        eprintln!("{note}");
    }
    let c = hooks.collector.lock();
    Ok(Run {
        outcome,
        last: c.exit_snapshot().cloned(),
        errors: c.errors(),
        snapshots: c.decoded(),
        notifications: c.notifications(),
    })
}

/// Say how a run ended when it was not with status 0, the way `mobius run`
/// does, and why there is no final snapshot when there is none.
fn report_run(run: &Run, number: u32, title: &str) {
    let status = run.outcome.exit_status();
    if let Some(report) = run.outcome.stop.report() {
        eprintln!("{report}");
    }
    if !matches!(run.outcome.stop, Stop::Guest(0)) {
        eprintln!("mobius: error: run {number} of '{title}' ended with status {status}");
    }
    if run.last.is_none() {
        let why = match run.outcome.stop {
            Stop::Guest(0) => String::new(),
            ref stop => format!(": {}", stop.cause()),
        };
        eprintln!("mobius: warning: the guest sent no final statistics snapshot{why}");
    }
}

/// `mobius stat`: run, collect, print.
pub fn stat(args: &StatArgs) -> i32 {
    if args.list_events {
        events::all_names().iter().for_each(|n| println!("{n}"));
        println!("kvm.<name>  (KVM's per-vCPU statistics, e.g. kvm.exits, kvm.pf_taken; as the kernel offers them)");
        return 0;
    }
    let (title, cmdline, initramfs) =
        match target(args).and_then(|r| check_events(&args.events).map(|_| r)) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("mobius: error: {e}");
                return host::USAGE;
            }
        };
    let start = Instant::now();
    let mut all: Vec<Vec<Event>> = Vec::new();
    let mut last = None;
    let mut errors = super::DecodeErrors::default();
    let mut status = 0;
    for i in 0..args.repeat {
        let run_id = u64::from(std::process::id()) << 32 | u64::from(i);
        let final_run = i + 1 == args.repeat;
        let run = match one_run(args, &cmdline, initramfs.as_ref(), run_id, final_run) {
            Ok(run) => run,
            Err(code) => return code,
        };
        status = run.outcome.exit_status();
        report_run(&run, i + 1, &title);
        errors.add(&run.errors);
        if run.outcome.kvm_stats.is_empty() && args.events.iter().any(|e| e.starts_with("kvm.")) {
            eprintln!("mobius: warning: this kernel offers no KVM binary statistics (KVM_GET_STATS_FD): kvm.* not supported");
        }
        let mut evs = events::collect(run.last.as_ref(), &run.outcome);
        evs.push(Event::count("stats.snapshots", run.snapshots));
        evs.push(Event::count("stats.notifications", run.notifications));
        all.push(events::select(evs, &args.events));
        last = run.last;
        if status != 0 {
            break;
        }
    }
    let agg = format::aggregate(&all);
    let elapsed = start.elapsed().as_secs_f64() / all.len().max(1) as f64;
    if args.json {
        println!(
            "{}",
            format::json(&title, status, &agg, all.len(), last.as_ref(), errors)
        );
    } else if let Some(sep) = &args.separator {
        eprint!("{}", format::csv(&agg, sep, (elapsed * 1e9) as u64));
    } else {
        eprint!("{}", format::table(&title, &agg, all.len(), elapsed));
    }
    if args.histogram {
        if let Some(s) = &last {
            eprint!("{}", format::histograms(s));
        }
    }
    if let Some(summary) = errors.summary() {
        eprintln!("{summary}");
    }
    status
}
