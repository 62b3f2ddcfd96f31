//! `mobius stat` on runs of real programs under KVM: the system calls of
//! the final snapshot's process block (`syscalls`, `syscalls.enosys` with
//! the unimplemented numbers), and `--per-process` in the table, `-j` and
//! `-x` forms, which stay readable by perf's parsers (`common::perf_stat`).

mod common;

use common::perf_stat::{parse_csv_output, parse_json, Shape};
use common::programs::program;
use common::{kvm_or_skip, stat_to_file, stderr};
use serde_json::Value;

/// `mobius stat -o FILE ARGS -- PROGRAM WORDS`: the process output and
/// what FILE holds.
fn stat_program(args: &[&str], name: &str, words: &[&str]) -> (std::process::Output, String) {
    let path = program(name);
    let mut all = args.to_vec();
    all.push("--");
    all.push(path.to_str().expect("UTF-8 path"));
    all.extend_from_slice(words);
    stat_to_file(&all)
}

/// The `-j` lines: perf's counter records (checked against perf's format)
/// and the other objects.
fn split_json(text: &str) -> (Vec<common::perf_stat::Counter>, Vec<Value>) {
    let mut counters = Vec::new();
    let mut others = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v.get("counter-value").is_some() {
            let c = parse_json(line, Shape::default()).unwrap_or_else(|e| panic!("{e}"));
            counters.push(c);
        } else {
            others.push(v);
        }
    }
    (counters, others)
}

fn counter(counters: &[common::perf_stat::Counter], event: &str) -> Option<f64> {
    counters
        .iter()
        .find(|c| c.event == event)
        .unwrap_or_else(|| panic!("no {event} in {counters:#?}"))
        .value
        .number()
}

#[test]
fn per_process_shows_parent_and_child_in_every_form() {
    if !kvm_or_skip("per_process_shows_parent_and_child_in_every_form") {
        return;
    }
    let words = ["status", "3"];
    // The table: the counters, then one row per process.
    let (o, text) = stat_program(&["--per-process"], "spawn", &words);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let syscalls_line = text
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("syscalls"))
        .unwrap_or_else(|| panic!("syscalls is a default event for programs:\n{text}"));
    let total: u64 = syscalls_line
        .split_whitespace()
        .next()
        .map(|v| v.replace(',', ""))
        .and_then(|v| v.parse().ok())
        .expect("a count");
    assert!(total > 0, "{text}");
    assert!(text.contains("syscalls.enosys"), "{text}");
    let header = text
        .lines()
        .position(|l| l.trim_start().starts_with("pid"))
        .unwrap_or_else(|| panic!("no process table:\n{text}"));
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(header + 1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    // pid ppid status(2 words) syscalls enosys page-faults cpu-msec command
    assert_eq!(rows[0][..4], ["1", "0", "exit", "0"], "{text}");
    assert_eq!(rows[1][..4], ["2", "1", "exit", "3"], "{text}");
    // Each process's command line: the program as given, and the child
    // that spawn runs as `/bin/spawn exit 3`.
    let given = program("spawn").to_str().expect("UTF-8 path").to_string();
    let commands = [format!("{given} status 3"), "/bin/spawn exit 3".to_string()];
    let mut sum = 0;
    for (r, command) in rows.iter().zip(&commands) {
        assert_eq!(r[8..].join(" "), *command, "{text}");
        let calls: u64 = r[4].replace(',', "").parse().expect("syscalls");
        assert!(calls > 0, "{text}");
        sum += calls;
        assert!(r[6].replace(',', "").parse::<u64>().expect("faults") > 0);
        assert!(r[7].replace(',', "").parse::<f64>().expect("msec") > 0.0);
    }
    assert_eq!(sum, total, "the processes add up to the run:\n{text}");

    // -j: perf's counter records, then one object per process.
    let (o, text) = stat_program(&["-j", "--per-process"], "spawn", &words);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (counters, procs) = split_json(&text);
    assert_eq!(counter(&counters, "syscalls"), Some(total as f64));
    assert_eq!(counter(&counters, "syscalls.enosys"), Some(0.0));
    assert_eq!(procs.len(), 2, "{text}");
    for (p, (pid, ppid, code)) in procs.iter().zip([(1, 0, 0), (2, 1, 3)]) {
        assert_eq!(p["pid"], pid, "{p}");
        assert_eq!(p["ppid"], ppid, "{p}");
        assert_eq!(p["exit-code"], code, "{p}");
        assert_eq!(p["status"], format!("exit {code}"), "{p}");
        assert!(p["signal"].is_null(), "{p}");
        assert_eq!(p["name"], "/bin/spawn", "{p}");
        assert_eq!(p["command"], commands[pid as usize - 1], "{p}");
        assert!(p["syscalls"].as_u64().is_some_and(|n| n > 0), "{p}");
        assert!(p["page-faults"].as_u64().is_some_and(|n| n > 0), "{p}");
        assert!(p["cpu-cycles"].as_u64().is_some_and(|n| n > 0), "{p}");
    }

    // -x: perf's CSV reader skips the '#process' lines.
    let (o, text) = stat_program(&["-x", ";", "--per-process"], "spawn", &words);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let counters =
        parse_csv_output(&text, ";", Shape::default()).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(counter(&counters, "syscalls"), Some(total as f64));
    let procs: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.starts_with("#process;"))
        .map(|l| l.split(';').collect())
        .collect();
    assert_eq!(procs.len(), 2, "{text}");
    assert_eq!(procs[0][1..4], ["1", "0", "exit 0"], "{text}");
    assert_eq!(procs[1][1..4], ["2", "1", "exit 3"], "{text}");
    assert!(procs.iter().all(|p| p.len() == 10 && p[8] == "/bin/spawn"));
    assert_eq!([procs[0][9], procs[1][9]], [&commands[0], &commands[1]]);
}

#[test]
fn unimplemented_calls_are_counted_and_numbered() {
    if !kvm_or_skip("unimplemented_calls_are_counted_and_numbered") {
        return;
    }
    // 400: unassigned on x86-64 Linux too; printed as the number alone.
    let (o, text) = stat_program(&["-e", "syscalls,syscalls.enosys"], "enosys", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let line = text
        .lines()
        .find(|l| l.contains("syscalls.enosys"))
        .unwrap_or_else(|| panic!("{text}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words, ["2", "syscalls.enosys", "#", "400", "x2"], "{text}");
    // A number Linux names (nfsservctl, gone from Linux: ENOSYS there too),
    // and both as JSON records of their own with --per-process.
    let (o, text) = stat_program(
        &["-j", "--per-process", "-e", "syscalls.enosys"],
        "enosys",
        &["180", "3"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (counters, others) = split_json(&text);
    assert_eq!(counter(&counters, "syscalls.enosys"), Some(3.0));
    let numbers: Vec<&Value> = others
        .iter()
        .filter(|v| v.get("syscall").is_some())
        .collect();
    assert_eq!(numbers.len(), 1, "{text}");
    assert_eq!(numbers[0]["syscall"], 180);
    assert_eq!(numbers[0]["name"], "nfsservctl");
    assert_eq!(numbers[0]["enosys"], 3);
    let procs: Vec<&Value> = others.iter().filter(|v| v.get("pid").is_some()).collect();
    assert_eq!(procs.len(), 1, "{text}");
    assert_eq!(procs[0]["enosys"], 3);
    // The table names it.
    let (_, text) = stat_program(&["-e", "syscalls.enosys"], "enosys", &["180", "1"]);
    assert!(text.contains("#  180 (nfsservctl) x1"), "{text}");
}

#[test]
fn built_in_workloads_have_no_processes() {
    if !kvm_or_skip("built_in_workloads_have_no_processes") {
        return;
    }
    // Not in the default report, <not supported> when asked for.
    let (o, text) = stat_to_file(&["--per-process", "--", "seq-touch", "pages=3"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!text.contains("syscalls"), "{text}");
    assert!(!text.contains("pid"), "{text}");
    let err = stderr(&o);
    let note: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("--per-process"))
        .collect();
    assert_eq!(note.len(), 1, "{}", stderr(&o));
    assert!(note[0].starts_with("mobius: note: "), "{}", stderr(&o));
    let (o, text) = stat_to_file(&["-x", ",", "-e", "syscalls,syscalls.enosys", "--", "hello"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let counters = parse_csv_output(&text, ",", Shape::default()).expect("CSV");
    assert_eq!(counters.len(), 2, "{text}");
    assert!(
        counters.iter().all(|c| c.value.number().is_none()),
        "{text}"
    );
    assert!(text.contains("<not supported>,,syscalls,"), "{text}");
}
