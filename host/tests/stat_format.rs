//! `mobius stat -x SEP` and `-j` read by a parser written against perf's
//! documented formats (`common::perf_stat`): every line parses, with perf's
//! fields and types, under the run's options (`-r`, `-I`, `--summary`,
//! `-o`, `--append`), and the numbers are the workload's.

mod common;

use common::perf_stat::{
    parse_csv_output, parse_json, parse_json_output, Counter, CounterValue, Shape,
};
use common::{kvm_or_skip, run, stat_to_file, stderr, stdout};

const EVENTS: &str =
    "faults,faults.upgrade,page-faults,minor-faults,major-faults,time.total,kvm.no_such_statistic";

fn by_event<'a>(counters: &'a [Counter], event: &str) -> &'a Counter {
    counters
        .iter()
        .find(|c| c.event == event)
        .unwrap_or_else(|| panic!("no {event} in {counters:#?}"))
}

/// What `read-then-write pages=40` must show for [`EVENTS`], whatever the form.
fn check_counts(counters: &[Counter]) {
    let names: Vec<&str> = counters.iter().map(|c| c.event.as_str()).collect();
    assert_eq!(
        names,
        EVENTS.split(',').collect::<Vec<_>>(),
        "-e order, names as asked"
    );
    let value = |e: &str| by_event(counters, e).value.number();
    assert_eq!(value("faults"), Some(80.0));
    assert_eq!(value("page-faults"), Some(80.0));
    assert_eq!(value("major-faults"), Some(0.0));
    assert_eq!(value("minor-faults"), Some(80.0));
    let upgrade = by_event(counters, "faults.upgrade");
    assert_eq!(upgrade.value.number(), Some(40.0));
    assert_eq!(
        upgrade.metric.as_ref().map(|m| m.1.as_str()),
        Some("us/fault")
    );
    let time = by_event(counters, "time.total");
    assert_eq!(time.unit, "msec");
    assert!(time.value.number().is_some_and(|ms| ms > 0.0));
    let missing = by_event(counters, "kvm.no_such_statistic");
    assert_eq!(missing.value, CounterValue::NotSupported);
    assert_eq!((missing.runtime, missing.metric.as_ref()), (0, None));
    for c in counters {
        assert_eq!(c.pcnt_running, 100.0, "{c:?}");
        if c.value != CounterValue::NotSupported {
            assert!(c.runtime > 0, "{c:?}");
        }
    }
}

#[test]
fn csv_reads_as_perfs_with_and_without_repeats() {
    if !kvm_or_skip("csv_reads_as_perfs_with_and_without_repeats") {
        return;
    }
    for (repeat, sep) in [("1", ";"), ("2", ",")] {
        let (o, text) = stat_to_file(&[
            "-x",
            sep,
            "-r",
            repeat,
            "-e",
            EVENTS,
            "--",
            "read-then-write",
            "pages=40",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(
            text.starts_with("# started on "),
            "perf's -o header: {text}"
        );
        let shape = Shape {
            repeat: repeat == "2",
            ..Shape::default()
        };
        let counters =
            parse_csv_output(&text, sep, shape).unwrap_or_else(|e| panic!("{e}\n{text}"));
        check_counts(&counters);
        if shape.repeat {
            assert_eq!(by_event(&counters, "faults").variance, Some(0.0));
        }
    }
}

#[test]
fn json_reads_as_perfs_with_and_without_repeats() {
    if !kvm_or_skip("json_reads_as_perfs_with_and_without_repeats") {
        return;
    }
    for repeat in ["1", "2"] {
        let (o, text) = stat_to_file(&[
            "-j",
            "-r",
            repeat,
            "-e",
            EVENTS,
            "--",
            "read-then-write",
            "pages=40",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let shape = Shape {
            repeat: repeat == "2",
            ..Shape::default()
        };
        let counters = parse_json_output(&text, shape).unwrap_or_else(|e| panic!("{e}\n{text}"));
        check_counts(&counters);
    }
}

/// The `-I` lines of one run: time stamps rise, and the per-interval
/// counts add up to the workload's faults.
fn check_intervals(counters: &[Counter], faults: f64) {
    let lines: Vec<&Counter> = counters
        .iter()
        .filter(|c| c.event == "faults" && !c.summary)
        .collect();
    assert!(lines.len() >= 2, "{counters:#?}");
    let stamps: Vec<f64> = lines.iter().filter_map(|c| c.interval).collect();
    assert_eq!(stamps.len(), lines.len());
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
    let sum: f64 = lines.iter().filter_map(|c| c.value.number()).sum();
    assert_eq!(sum, faults);
    assert!(counters
        .iter()
        .all(|c| c.event != "exits" || c.summary || c.interval.is_none()));
}

#[test]
fn interval_lines_in_every_form() {
    if !kvm_or_skip("interval_lines_in_every_form") {
        return;
    }
    let workload = ["--", "seq-touch", "pages=200"];
    let interval = Shape {
        interval: true,
        ..Shape::default()
    };
    // CSV, with the totals after them (--summary): `summary` first.
    let mut args = vec![
        "-x",
        ",",
        "-I",
        "5",
        "--summary",
        "-e",
        "faults,frames.free,exits",
    ];
    args.extend(workload);
    let (o, text) = stat_to_file(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let counters = parse_csv_output(&text, ",", interval).unwrap_or_else(|e| panic!("{e}\n{text}"));
    check_intervals(&counters, 200.0);
    let summary: Vec<&str> = counters
        .iter()
        .filter(|c| c.summary)
        .map(|c| c.event.as_str())
        .collect();
    assert_eq!(summary, ["faults", "frames.free", "exits"]);
    // JSON: "interval" on every line; no totals without --summary.
    let mut args = vec!["-j", "-I", "5", "-e", "faults"];
    args.extend(workload);
    let (o, text) = stat_to_file(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let counters = parse_json_output(&text, interval).unwrap_or_else(|e| panic!("{e}\n{text}"));
    check_intervals(&counters, 200.0);
    // JSON --summary: the totals are lines without "interval".
    let mut args = vec!["-j", "-I", "5", "--summary", "-e", "faults"];
    args.extend(workload);
    let (_, text) = stat_to_file(&args);
    let last = text.lines().last().unwrap_or_default();
    let total = parse_json(last, Shape::default()).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(total.value.number(), Some(200.0));
}

#[test]
fn output_file_is_replaced_or_appended_to() {
    if !kvm_or_skip("output_file_is_replaced_or_appended_to") {
        return;
    }
    let scratch = common::Scratch::new();
    let path = scratch.path().join("out.csv");
    let file = path.to_str().expect("UTF-8");
    for extra in [&[][..], &["--append"]] {
        let mut args = vec!["stat", "-x", ",", "-e", "faults", "-o", file];
        args.extend_from_slice(extra);
        args.extend(["--", "seq-touch", "pages=5"]);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(!stderr(&o).contains(",faults,"), "counters go to the file");
    }
    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(text.matches("# started on ").count(), 2, "{text}");
    let counters = parse_csv_output(&text, ",", Shape::default()).expect("CSV");
    assert_eq!(counters.len(), 2, "{text}");
    let o = run(&[
        "stat",
        "-x",
        ",",
        "-e",
        "faults",
        "-o",
        file,
        "--",
        "seq-touch",
        "pages=5",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(
        parse_csv_output(&text, ",", Shape::default()).map(|c| c.len()),
        Ok(1)
    );
}

#[test]
fn without_e_the_events_listed_as_default_are_shown() {
    if !kvm_or_skip("without_e_the_events_listed_as_default_are_shown") {
        return;
    }
    let list = run(&["stat", "--list-events"]);
    assert_eq!(list.status.code(), Some(0));
    let marked: Vec<String> = stdout(&list)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next()?;
            (w.next() == Some("*")).then(|| name.to_string())
        })
        .collect();
    assert!(marked.len() > 10, "{}", stdout(&list));
    let (o, text) = stat_to_file(&["-j", "--", "seq-touch", "pages=5"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let shown: Vec<String> = parse_json_output(&text, Shape::default())
        .expect("JSON")
        .into_iter()
        .map(|c| c.event)
        .collect();
    assert_eq!(shown, marked);
}
