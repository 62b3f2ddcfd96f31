//! `mobius stat` and `mobius list`.
use std::ffi::{OsStr, OsString};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mobius_shared::stats::{FaultKind, Snapshot};
use mobius_shared::workloads::{self, CATALOGUE};

use super::budget;
use super::catalogue;
use super::error::StatError;
use super::events::{self, Event, RunFacts};
use super::format::{self, histogram, Prefix, Style};
use super::hooks::StatsHooks;
use super::interval::IntervalPrinter;
use super::output::{self, Output};
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
pub(crate) type Target = (String, String, Option<Vec<u8>>);

/// The workload words or PROGRAM after `--`: a word with a '/' or naming an
/// existing file is a PROGRAM, packed into an initramfs; otherwise a
/// built-in workload.
fn target(args: &StatArgs) -> Result<Target, StatError> {
    target_of(&args.workload, &args.run, args.interval)
}

/// [`target`] for any subcommand that runs `workload` (`stat`, `record`).
pub(crate) fn target_of(
    workload: &[String],
    run: &crate::cli::RunArgs,
    interval: Option<u64>,
) -> Result<Target, StatError> {
    let program: Vec<OsString> = match workload.first() {
        Some(word) if is_program_word(OsStr::new(word)) => {
            workload.iter().map(OsString::from).collect()
        }
        _ => Vec::new(),
    };
    let (title, line) = if program.is_empty() {
        workload_cmdline(workload, run, interval)?
    } else {
        let mut line = run.cmdline.trim().to_string();
        if let Some(ms) = interval {
            line.push_str(&format!(" stats_interval_ms={ms}"));
        }
        (workload.join(" "), line.trim().to_string())
    };
    let initramfs = run.archive.spec(&program, &run.disks).build()?;
    Ok((title, line, initramfs))
}

/// Check the workload words and build the guest command line for them.
fn workload_cmdline(
    workload: &[String],
    run: &crate::cli::RunArgs,
    interval: Option<u64>,
) -> Result<(String, String), StatError> {
    let Some((name, params)) = workload.split_first() else {
        return Err(StatError::NoWorkload);
    };
    let w = workloads::find(name).ok_or_else(|| StatError::UnknownWorkload(name.clone()))?;
    for p in params {
        let (k, _) = p
            .split_once('=')
            .ok_or_else(|| StatError::NotKeyValue(p.clone()))?;
        if !w.params.iter().any(|x| x.name == k) {
            return Err(StatError::UnknownParameter {
                workload: name.clone(),
                key: k.to_string(),
            });
        }
    }
    let words = params.join(" ");
    w.check(&words).map_err(|e| StatError::BadParameter {
        workload: name.clone(),
        why: e.to_string(),
    })?;
    let title = workload.join(" ");
    let mut line = run.cmdline.trim().to_string();
    line.push_str(&format!(" workload={name} {words}"));
    if let Some(ms) = interval {
        line.push_str(&format!(" stats_interval_ms={ms}"));
    }
    Ok((title, line.trim().to_string()))
}

fn check_events(wanted: &[String]) -> Result<(), StatError> {
    match wanted.iter().find(|w| !events::is_known(w)) {
        Some(bad) => Err(StatError::UnknownEvent(bad.clone())),
        None => Ok(()),
    }
}

/// The output style `args` ask for.
fn style(args: &StatArgs) -> Style {
    match (&args.separator, args.json) {
        (_, true) => Style::Json,
        (Some(sep), false) => Style::Csv(sep.clone()),
        (None, false) => Style::Table,
    }
}

/// Standard error, or the `-o` file with perf's `# started on` line.
fn open_output(args: &StatArgs, style: &Style) -> Result<Output, StatError> {
    let Some(path) = &args.output else {
        return Ok(Output::stderr());
    };
    let out = Output::file(path, args.append).map_err(|source| StatError::OpenOutput {
        path: path.clone(),
        source,
    })?;
    if *style != Style::Json {
        out.write(&output::started_on());
    }
    Ok(out)
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
    out: &Output,
    intervals: Option<&Arc<Mutex<IntervalPrinter>>>,
) -> Result<Run, StatError> {
    let mut config = args.run.config();
    // -I lines, and the report after the last run, are written under the filter.
    config.seccomp_write_fds.extend(out.fd());
    if config.seccomp != Seccomp::Off && !final_run {
        // This thread builds another VM after this one.
        config.seccomp = Seccomp::VcpuAndNextVm;
    }
    config.cmdline = format!("{cmdline} run_id={run_id}");
    config.initramfs = initramfs.cloned();
    config.kvm_stats = true;
    let mut hooks = StatsHooks::new();
    hooks.virtio = !args.serial_stats;
    hooks.collector.lock().expect_run_id(run_id);
    if let Some(printer) = intervals {
        lock(printer).new_run();
        let printer = Arc::clone(printer);
        hooks
            .collector
            .lock()
            .set_callback(Box::new(move |s| lock(&printer).print(s)));
    }
    let outcome = run_vm(&config, &mut hooks)?;
    if let Some(printer) = intervals {
        // The counts since the last line set printed, and how many
        // snapshots were folded into later line sets.
        if let Some(note) = lock(printer).end_run() {
            eprintln!("{note}");
        }
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `mobius stat`: run, collect, print; the exit status.
pub fn stat(args: &StatArgs) -> i32 {
    if args.list_events {
        print!("{}", catalogue::list_text());
        return 0;
    }
    match run_stat(args) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("mobius: error: {e}");
            e.exit_status()
        }
    }
}

fn run_stat(args: &StatArgs) -> Result<i32, StatError> {
    check_events(&args.events)?;
    if !args.run.disks.is_empty() && args.repeat > 1 {
        return Err(StatError::DisksWithRepeat);
    }
    let (title, cmdline, initramfs) = target(args)?;
    let names = events::wanted_names(&args.events);
    let style = style(args);
    let out = open_output(args, &style)?;
    let intervals = args.interval.map(|ms| {
        let period = Duration::from_millis(ms);
        let p = IntervalPrinter::new(style.clone(), &names, out.clone(), period);
        if p.is_empty() {
            eprintln!("mobius: warning: -I: none of these events is known before the run ends (see mobius stat --list-events)");
        }
        Arc::new(Mutex::new(p))
    });
    let start = Instant::now();
    let mut all: Vec<Vec<Event>> = Vec::new();
    let budget_names = budget::names(&args.fail_if);
    let mut budget_runs: Vec<Vec<Event>> = Vec::new();
    let mut runtimes = Vec::new();
    let mut last = None;
    let mut errors = super::DecodeErrors::default();
    let mut status = 0;
    for i in 0..args.repeat {
        let run_id = u64::from(std::process::id()) << 32 | u64::from(i);
        let final_run = i + 1 == args.repeat;
        let run = one_run(
            args,
            &cmdline,
            initramfs.as_ref(),
            run_id,
            final_run,
            &out,
            intervals.as_ref(),
        )?;
        status = run.outcome.exit_status();
        report_run(&run, i + 1, &title);
        errors.add(&run.errors);
        if run.outcome.kvm_stats.is_empty() && names.iter().any(|e| e.starts_with("kvm.")) {
            eprintln!("mobius: warning: this kernel offers no KVM binary statistics (KVM_GET_STATS_FD): kvm.* not supported");
        }
        let facts = RunFacts {
            last: run.last.as_ref(),
            outcome: &run.outcome,
            snapshots: run.snapshots,
            notifications: run.notifications,
            errors: run.errors,
        };
        let counted = events::collect(&facts);
        let selected = events::select(&counted, &names);
        all.push(if args.events.is_empty() {
            events::skip_uncounted(selected)
        } else {
            selected
        });
        budget_runs.push(events::select(&counted, &budget_names));
        runtimes.push(u64::try_from(run.outcome.timings.total.as_nanos()).unwrap_or(u64::MAX));
        last = run.last;
        if status != 0 {
            break;
        }
    }
    let agg = format::aggregate(&all, &runtimes);
    let rows: Vec<_> = agg.iter().map(|a| a.row(all.len())).collect();
    let elapsed = start.elapsed().as_secs_f64() / all.len().max(1) as f64;
    // Like perf: after -I lines, the totals only with --summary.
    let prefix = match args.interval {
        None => Some(Prefix::None),
        Some(_) if args.summary => Some(Prefix::Summary),
        Some(_) => None,
    };
    let block = last.as_ref().and_then(|s| s.processes.as_ref());
    if let Some(prefix) = prefix {
        let notes = format::notes(block);
        out.write(&style.report(&title, &rows, all.len(), elapsed, prefix, &notes));
    }
    if args.per_process {
        if prefix.is_none() && style == Style::Table {
            // After -I lines, not after the report's own closing blank line.
            out.write("\n");
        }
        match (&last, block) {
            (Some(s), Some(b)) => out.write(&style.processes(&title, b, s.tsc_khz, all.len())),
            (None, _) => eprintln!(
                "mobius: note: --per-process: no processes to show (no final statistics snapshot)"
            ),
            (Some(_), None) => eprintln!(
                "mobius: note: --per-process: no processes to show (the run ran no program)"
            ),
        }
    }
    if args.histogram {
        if let Some(s) = &last {
            out.write(&histogram::histograms(s));
        }
    }
    if let Some(summary) = errors.summary() {
        eprintln!("{summary}");
    }
    out.finish().map_err(StatError::WriteOutput)?;
    let broken = budget::check(&args.fail_if, &budget_runs);
    for line in &broken {
        eprintln!("{line}");
    }
    if status == 0 && !broken.is_empty() {
        status = mobius_shared::exit::host::BUDGET_EXCEEDED;
    }
    Ok(status)
}
