//! The process block of a run of programs ([`ProcessBlock`], wire v4): the
//! unimplemented system-call numbers the table names under
//! `syscalls.enosys`, and `--per-process`, one line per process in each
//! output style.
//!
//! perf's CSV and JSON readers must keep working, so neither style adds
//! fields to a counter line; `--per-process` adds lines of their own after
//! the counters:
//!
//! * the table: one line per process, its command line last (the
//!   program's path when the guest sent none: wire version 4);
//! * `-x SEP`: lines that start with `#` (perf's comment lines, as its
//!   `# started on` line, which its readers skip): `#process`, then pid,
//!   parent pid, status, system calls, ENOSYS calls, ring-3 page faults,
//!   CPU msec (`%.2f`, empty when the TSC frequency is unknown), name (the
//!   last 16 bytes of the program's path), command line (empty from a
//!   version-4 guest); and one `#enosys` line per unimplemented number:
//!   number, name (empty when unknown), calls. Nothing is quoted; the
//!   command line comes last and may hold SEP (split at most 9 times).
//! * `-j`: one object per process, `{"pid" : 1, "ppid" : 0, "status" :
//!   "exit 0", "exit-code" : 0, "signal" : null, "syscalls" : 117, "enosys" :
//!   0, "page-faults" : 95, "cpu-msec" : 1.250000, "cpu-cycles" : 2500000,
//!   "name" : "/bin/hello", "command" : "/bin/hello -n world"}`, then one per unimplemented number,
//!   `{"syscall" : 435, "name" : "clone3", "enosys" : 2}` (`name` null when
//!   Linux has none; `syscall` null and `name` `(others)` for the calls of
//!   numbers past the block's room): objects without `counter-value`, told
//!   apart by `pid` and `syscall`.
//!
//! The block comes from the guest: names are shown with control characters
//! replaced (table and CSV) or escaped (JSON), sums saturate.
use std::fmt::Write as _;

use mobius_shared::procstats::{ProcessBlock, ProcessRecord, MAX_ENOSYS, RUNNING};

use super::json::string;
use super::table::grouped;
use crate::syscalls;

/// Linux's signal names, 1..=31 (x86-64).
const SIGNALS: [&str; 31] = [
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// The name of signal `sig`: `SIGSEGV`, ..., `SIGRTMIN+n` for the real-time
/// signals 32..=64; `None` past them.
pub fn signal_name(sig: u32) -> Option<String> {
    match sig {
        1..=31 => Some(SIGNALS[sig as usize - 1].to_string()),
        32..=64 => Some(format!("SIGRTMIN+{}", sig - 32)),
        _ => None,
    }
}

/// How a process stands, from the status a shell would show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Running,
    Exit(u32),
    Killed(u32),
    /// The `(others)` record, which sums processes of every status.
    Others,
}

impl Status {
    /// `status` of record `r`: [`RUNNING`], an exit code (0..=128, and
    /// 193..=255 which no signal gives), or 128 + signal for 129..=192.
    pub fn of(r: &ProcessRecord) -> Status {
        match r.status {
            _ if is_others(r) => Status::Others,
            RUNNING => Status::Running,
            s @ 129..=192 => Status::Killed(s - 128),
            s => Status::Exit(s),
        }
    }

    /// `running`, `exit 3`, `killed SIGSEGV`, `-` for `(others)`.
    pub fn text(self) -> String {
        match self {
            Status::Running => "running".into(),
            Status::Exit(code) => format!("exit {code}"),
            Status::Killed(sig) => match signal_name(sig) {
                Some(name) => format!("killed {name}"),
                None => format!("killed signal {sig}"),
            },
            Status::Others => "-".into(),
        }
    }
}

/// Whether `r` is the record that sums the processes past the block's
/// room (pid 0 named `(others)`).
pub fn is_others(r: &ProcessRecord) -> bool {
    r.pid == 0 && r.name() == "(others)"
}

/// Milliseconds of `cycles` guest TSC cycles; `None` when the frequency is
/// unknown.
pub fn cpu_msec(cycles: u64, tsc_khz: u64) -> Option<f64> {
    (tsc_khz != 0).then(|| cycles as f64 / tsc_khz as f64)
}

/// `n` with thousands grouped by commas, exactly (no float rounding).
pub fn grouped_u64(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `s` with control characters (a terminal's escapes, newlines) replaced by
/// `?`: names come from the guest.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// One unimplemented number: its name when Linux has one, and its calls;
/// `nr: None` stands for calls of numbers past the block's room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enosys {
    pub nr: Option<u32>,
    pub name: Option<&'static str>,
    pub count: u64,
}

/// The unimplemented numbers of `b`, most called first (then by number),
/// and, when the block ran out of room for them, the calls it could not
/// place.
pub fn enosys(b: &ProcessBlock) -> Vec<Enosys> {
    let mut listed = b.enosys_numbers().to_vec();
    listed.sort_by_key(|e| (std::cmp::Reverse(e.count), e.nr));
    let mut out: Vec<Enosys> = listed
        .iter()
        .map(|e| Enosys {
            nr: Some(e.nr),
            name: syscalls::lookup(i64::from(e.nr)),
            count: e.count,
        })
        .collect();
    let placed = listed
        .iter()
        .fold(0u64, |sum, e| sum.saturating_add(e.count));
    let rest = b.enosys.saturating_sub(placed);
    if listed.len() == MAX_ENOSYS && rest > 0 {
        out.push(Enosys {
            nr: None,
            name: None,
            count: rest,
        });
    }
    out
}

/// The table's lines under `syscalls.enosys`: `435 (clone3) x2`, `400 x2`
/// for a number Linux does not name, `(others) x5` for the rest.
pub fn enosys_notes(b: &ProcessBlock) -> Vec<String> {
    enosys(b)
        .iter()
        .map(|e| match (e.nr, e.name) {
            (Some(nr), Some(name)) => format!("{nr} ({name}) x{}", e.count),
            (Some(nr), None) => format!("{nr} x{}", e.count),
            (None, _) => format!("(others) x{}", e.count),
        })
        .collect()
}

/// The records of `b` by pid, `(others)` last (the guest lists them as
/// they end).
pub fn by_pid(b: &ProcessBlock) -> Vec<&ProcessRecord> {
    let mut v: Vec<&ProcessRecord> = b.records().iter().collect();
    v.sort_by_key(|r| (is_others(r), r.pid));
    v
}

/// One process's fields as the table and CSV show them.
struct Fields {
    pid: String,
    ppid: String,
    status: String,
    syscalls: u64,
    enosys: u64,
    faults: u64,
    msec: Option<f64>,
    name: String,
    command: String,
}

fn fields(r: &ProcessRecord, tsc_khz: u64) -> Fields {
    let others = is_others(r);
    let id = |v: u32| if others { "-".into() } else { v.to_string() };
    Fields {
        pid: id(r.pid),
        ppid: id(r.parent),
        status: Status::of(r).text(),
        syscalls: r.syscalls,
        enosys: r.enosys,
        faults: r.faults,
        msec: cpu_msec(r.cpu_cycles, tsc_khz),
        name: clean(r.name()),
        command: clean(&r.command().to_string()),
    }
}

/// The `--per-process` table: a title, a header and one line per process,
/// columns as wide as their widest entry.
pub fn table(title: &str, b: &ProcessBlock, tsc_khz: u64, runs: usize) -> String {
    const HEAD: [&str; 8] = [
        "pid",
        "ppid",
        "status",
        "syscalls",
        "enosys",
        "page-faults",
        "cpu-msec",
        "command",
    ];
    let rows: Vec<[String; 8]> = by_pid(b)
        .into_iter()
        .map(|r| {
            let f = fields(r, tsc_khz);
            [
                f.pid,
                f.ppid,
                f.status,
                grouped_u64(f.syscalls),
                grouped_u64(f.enosys),
                grouped_u64(f.faults),
                f.msec.map_or_else(|| "-".into(), |ms| grouped(ms, 2)),
                if f.command.is_empty() {
                    f.name
                } else {
                    f.command
                },
            ]
        })
        .collect();
    let mut width = HEAD.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 8]| {
        let mut l = String::from(" ");
        for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
            let pad = w.saturating_sub(cell.chars().count());
            let _ = match i {
                // status and name: to the left; name last, not padded.
                2 => write!(l, "  {cell}{}", " ".repeat(pad)),
                7 => write!(l, "  {cell}"),
                _ => write!(l, "  {}{cell}", " ".repeat(pad)),
            };
        }
        l.trim_end().to_string()
    };
    let mut out = String::new();
    let last = if runs > 1 {
        format!(" (the last of {runs} runs)")
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        " Processes of '{title}'{last}: {} system calls, {} unimplemented (ENOSYS)\n",
        grouped_u64(b.syscalls),
        grouped_u64(b.enosys)
    );
    let _ = writeln!(out, "{}", line(HEAD));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row.each_ref().map(String::as_str)));
    }
    out.push('\n');
    out
}

/// The `-x SEP` lines: `#process` per process, `#enosys` per number.
pub fn csv(b: &ProcessBlock, tsc_khz: u64, sep: &str) -> String {
    let mut out = String::new();
    for r in by_pid(b) {
        let f = fields(r, tsc_khz);
        let msec = f.msec.map_or_else(String::new, |ms| format!("{ms:.2}"));
        let cells = [
            "#process".to_string(),
            f.pid,
            f.ppid,
            f.status,
            f.syscalls.to_string(),
            f.enosys.to_string(),
            f.faults.to_string(),
            msec,
            f.name,
            f.command,
        ];
        let _ = writeln!(out, "{}", cells.join(sep));
    }
    for e in enosys(b) {
        let cells = [
            "#enosys".to_string(),
            e.nr.map_or_else(|| "(others)".into(), |nr| nr.to_string()),
            e.name.unwrap_or_default().to_string(),
            e.count.to_string(),
        ];
        let _ = writeln!(out, "{}", cells.join(sep));
    }
    out
}

/// JSON `null`, or `v` as written by `f`.
fn or_null<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map_or_else(|| "null".into(), f)
}

/// The `-j` objects: one per process, then one per number.
pub fn json(b: &ProcessBlock, tsc_khz: u64) -> String {
    let mut out = String::new();
    for r in by_pid(b) {
        let others = is_others(r);
        let status = Status::of(r);
        let (code, signal) = match status {
            Status::Exit(c) => (Some(c), None),
            Status::Killed(s) => (None, Some(s)),
            _ => (None, None),
        };
        let _ = writeln!(
            out,
            "{{\"pid\" : {}, \"ppid\" : {}, \"status\" : {}, \"exit-code\" : {}, \"signal\" : {}, \
             \"syscalls\" : {}, \"enosys\" : {}, \"page-faults\" : {}, \"cpu-msec\" : {}, \
             \"cpu-cycles\" : {}, \"name\" : {}, \"command\" : {}}}",
            or_null((!others).then_some(r.pid), |v| v.to_string()),
            or_null((!others).then_some(r.parent), |v| v.to_string()),
            string(&status.text()),
            or_null(code, |c| c.to_string()),
            or_null(signal.and_then(signal_name), |s| string(&s)),
            r.syscalls,
            r.enosys,
            r.faults,
            or_null(cpu_msec(r.cpu_cycles, tsc_khz), |ms| format!("{ms:.6}")),
            r.cpu_cycles,
            string(r.name()),
            string(&r.command().to_string()),
        );
    }
    for e in enosys(b) {
        let _ = writeln!(
            out,
            "{{\"syscall\" : {}, \"name\" : {}, \"enosys\" : {}}}",
            or_null(e.nr, |nr| nr.to_string()),
            match e.nr {
                None => string("(others)"),
                Some(_) => or_null(e.name, string),
            },
            e.count
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mobius_shared::procstats::{EnosysCount, MAX_RECORDS};

    fn record(pid: u32, parent: u32, status: u32, name: &str) -> ProcessRecord {
        let mut r = ProcessRecord {
            pid,
            parent,
            status,
            syscalls: 100 + u64::from(pid),
            enosys: 1,
            faults: 40,
            cpu_cycles: 2_500_000,
            ..ProcessRecord::default()
        };
        r.set_name(name);
        r
    }

    /// spawn, its child that exited 3, a grandchild killed by SIGSEGV, one
    /// still running; two ENOSYS numbers, one Linux does not name.
    fn block() -> ProcessBlock {
        let mut b = ProcessBlock {
            syscalls: 1234,
            enosys: 3,
            n_enosys: 2,
            ..ProcessBlock::default()
        };
        b.enosys_numbers[0] = EnosysCount { nr: 435, count: 2 };
        b.enosys_numbers[1] = EnosysCount { nr: 400, count: 1 };
        // In the order they ended; shown by pid.
        // Two with command lines, two without (as a version-4 guest sent).
        let mut first = record(1, 0, 0, "/bin/spawn");
        first.set_command(b"/bin/spawn segv\0");
        let mut segv = record(3, 2, 139, "/bin/segv");
        segv.set_command(b"segv\0write, \x1b[31m\0");
        b.push(record(2, 1, 3, "/bin/spawn"));
        b.push(first);
        b.push(segv);
        b.push(record(4, 1, RUNNING, "/bin/hello"));
        b
    }

    #[test]
    fn statuses_as_a_shell_shows_them() {
        let text = |s| Status::of(&record(1, 0, s, "x")).text();
        assert_eq!(text(0), "exit 0");
        assert_eq!(text(3), "exit 3");
        assert_eq!(text(128), "exit 128");
        assert_eq!(text(137), "killed SIGKILL");
        assert_eq!(text(139), "killed SIGSEGV");
        assert_eq!(text(128 + 31), "killed SIGSYS");
        assert_eq!(text(128 + 34), "killed SIGRTMIN+2");
        assert_eq!(text(255), "exit 255");
        assert_eq!(text(RUNNING), "running");
        assert_eq!(text(RUNNING - 1), format!("exit {}", RUNNING - 1));
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(65), None);
    }

    #[test]
    fn enosys_numbers_are_named_when_linux_names_them() {
        assert_eq!(enosys_notes(&block()), ["435 (clone3) x2", "400 x1"]);
        // A full list, and calls of numbers it had no room for.
        let mut b = ProcessBlock {
            enosys: u64::MAX,
            n_enosys: MAX_ENOSYS as u32,
            ..ProcessBlock::default()
        };
        for (i, e) in b.enosys_numbers.iter_mut().enumerate() {
            *e = EnosysCount {
                nr: 500 + i as u32,
                count: u64::MAX / 4,
            };
        }
        let notes = enosys_notes(&b);
        assert_eq!(notes.len(), MAX_ENOSYS);
        b.enosys_numbers.iter_mut().for_each(|e| e.count = 1);
        b.enosys_numbers[3].count = 2;
        b.enosys = 21;
        let notes = enosys_notes(&b);
        assert_eq!(notes.len(), MAX_ENOSYS + 1);
        assert_eq!(notes.last().map(String::as_str), Some("(others) x4"));
        // Most called first, then by number.
        assert_eq!(notes[..3], ["503 x2", "500 x1", "501 x1"]);
    }

    #[test]
    fn table_has_a_row_per_process_with_its_status() {
        let t = table("/bin/spawn status 3", &block(), 2_000_000, 1);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            " Processes of '/bin/spawn status 3': 1,234 system calls, 3 unimplemented (ENOSYS)"
        );
        let words = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(
            words(lines[2]),
            [
                "pid",
                "ppid",
                "status",
                "syscalls",
                "enosys",
                "page-faults",
                "cpu-msec",
                "command"
            ]
        );
        assert_eq!(
            words(lines[3]),
            [
                "1",
                "0",
                "exit",
                "0",
                "101",
                "1",
                "40",
                "1.25",
                "/bin/spawn",
                "segv"
            ]
        );
        assert_eq!(words(lines[4])[2..4], ["exit", "3"]);
        assert_eq!(words(lines[5])[2..4], ["killed", "SIGSEGV"]);
        // The command line, control characters replaced; the path without one.
        assert!(lines[5].ends_with("  segv write, ?[31m"), "{t}");
        assert!(lines[4].ends_with("  /bin/spawn"), "{t}");
        assert_eq!(words(lines[6])[2], "running");
        assert_eq!(lines.len(), 8, "{t}");
        // Columns line up: every row as long up to the command column.
        let name_col = lines[2].find("command").expect("header");
        for l in [lines[3], lines[4], lines[6]] {
            assert_eq!(&l[name_col..name_col + 5], "/bin/", "{t}");
        }
        assert_eq!(&lines[5][name_col..name_col + 5], "segv ", "{t}");
        let repeated = table("x", &block(), 0, 3);
        assert!(repeated.contains("'x' (the last of 3 runs)"), "{repeated}");
        assert!(repeated.lines().nth(3).is_some_and(|l| l.contains(" - ")));
    }

    #[test]
    fn extremes_widen_the_columns_and_fold_into_others() {
        let mut b = ProcessBlock {
            syscalls: u64::MAX,
            enosys: u64::MAX,
            ..ProcessBlock::default()
        };
        for pid in 1..=100u32 {
            let mut r = record(pid, u32::MAX, 139, "/bin/\u{1b}[31mred\nx");
            r.syscalls = u64::MAX;
            r.enosys = u64::MAX;
            r.faults = u64::MAX;
            r.cpu_cycles = u64::MAX;
            b.push(r);
        }
        assert_eq!(b.records().len(), MAX_RECORDS);
        let t = table("many", &b, 1, 1);
        let lines: Vec<&str> = t.lines().filter(|l| !l.is_empty()).collect();
        // Title, header, 32 rows.
        assert_eq!(lines.len(), 2 + MAX_RECORDS, "{t}");
        let max = "18,446,744,073,709,551,615";
        assert!(lines[0].contains(&format!("{max} system calls")), "{t}");
        let first = lines[2];
        assert_eq!(first.matches(max).count(), 3, "{first}");
        assert!(first.contains(&u32::MAX.to_string()), "{first}");
        assert!(!t.contains('\u{1b}'), "control characters replaced");
        let others = lines[1 + MAX_RECORDS];
        let w: Vec<&str> = others.split_whitespace().collect();
        assert_eq!(w[..3], ["-", "-", "-"], "{others}");
        assert!(others.ends_with("(others)"), "{others}");
        // The name column lines up, whatever the widths.
        let name_col = lines[1].find("command").expect("header");
        for l in &lines[2..] {
            let name = l.get(name_col..).unwrap_or_default();
            assert!(name == "/bin/?[31mred?x" || name == "(others)", "{t}");
        }
        // JSON keeps the exact values and stays valid.
        for line in json(&b, 0).lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect(line);
            if v.get("pid").is_some() {
                assert_eq!(v["syscalls"].as_u64(), Some(u64::MAX));
                assert!(v["cpu-msec"].is_null());
            }
        }
        // CSV: one #process line per record.
        let csv = csv(&b, 1, ";");
        assert_eq!(csv.lines().count(), MAX_RECORDS);
        assert!(csv.lines().all(|l| l.starts_with("#process;")));
        assert!(csv.lines().all(|l| l.split(';').count() == 10), "{csv}");
    }

    #[test]
    fn json_objects_have_clear_keys() {
        let text = json(&block(), 2_000_000);
        let v: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect(l))
            .collect();
        assert_eq!(v.len(), 4 + 2);
        assert_eq!(v[0]["pid"], 1);
        assert_eq!(v[0]["ppid"], 0);
        assert_eq!(v[0]["status"], "exit 0");
        assert_eq!(v[0]["exit-code"], 0);
        assert!(v[0]["signal"].is_null());
        assert_eq!(v[0]["syscalls"], 101);
        assert_eq!(v[0]["page-faults"], 40);
        assert_eq!(v[0]["cpu-msec"].as_f64(), Some(1.25));
        assert_eq!(v[0]["cpu-cycles"], 2_500_000);
        assert_eq!(v[0]["name"], "/bin/spawn");
        assert_eq!(v[0]["command"], "/bin/spawn segv");
        assert_eq!(v[1]["command"], "");
        assert_eq!(v[2]["command"], "segv write, \u{1b}[31m");
        assert_eq!(v[2]["signal"], "SIGSEGV");
        assert!(v[2]["exit-code"].is_null());
        assert_eq!(v[3]["status"], "running");
        assert!(v.iter().all(|o| o.get("counter-value").is_none()));
        assert_eq!(
            text.lines().nth(4),
            Some("{\"syscall\" : 435, \"name\" : \"clone3\", \"enosys\" : 2}")
        );
        assert_eq!(
            (&v[5]["syscall"], &v[5]["enosys"]),
            (&400.into(), &1.into())
        );
        assert!(v[5]["name"].is_null());
    }

    #[test]
    fn csv_lines_are_perf_comments_in_table_order() {
        let text = csv(&block(), 2_000_000, ",");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "#process,1,0,exit 0,101,1,40,1.25,/bin/spawn,/bin/spawn segv"
        );
        assert_eq!(lines[1], "#process,2,1,exit 3,102,1,40,1.25,/bin/spawn,");
        assert_eq!(
            lines[2],
            "#process,3,2,killed SIGSEGV,103,1,40,1.25,/bin/segv,segv write, ?[31m"
        );
        assert_eq!(lines[4], "#enosys,435,clone3,2");
        assert_eq!(lines[5], "#enosys,400,,1");
        assert!(lines.iter().all(|l| l.starts_with('#')));
        let unknown_tsc = csv(&block(), 0, ",");
        assert!(unknown_tsc.starts_with("#process,1,0,exit 0,101,1,40,,/bin/spawn"));
    }

    #[test]
    fn grouping_is_exact() {
        assert_eq!(grouped_u64(0), "0");
        assert_eq!(grouped_u64(999), "999");
        assert_eq!(grouped_u64(1000), "1,000");
        assert_eq!(grouped_u64(u64::MAX), "18,446,744,073,709,551,615");
    }
}
