//! `mobius record` and `mobius report` (issue 11 item 4): what the guest
//! records under KVM (every fault of a built-in workload with its kind and
//! address, one in N with `--sample`, drops with a tiny ring), the report's
//! tables (the function of a test program that touched the pages), the
//! SVG heat map, and data files that are not good (a clean error, status
//! 67, without KVM).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::programs::program;
use common::{explain, kvm_or_skip, mobius, stderr, stdout};
use mobius::record::file::{DataFile, Header, Trailer, Writer};
use mobius_shared::exit::host::BAD_RECORD_FILE;
use mobius_shared::record::{access, AreaType, FaultRecord};
use mobius_shared::stats::FaultKind;

/// `mobius record -o DIR/NAME ARGS`: the run and the file's path.
fn record(dir: &Path, name: &str, args: &[&str]) -> (Output, PathBuf) {
    let path = dir.join(name);
    let out = mobius()
        .arg("record")
        .arg("-o")
        .arg(&path)
        .args(["--timeout", "120s"])
        .args(args)
        .output()
        .expect("spawn mobius");
    (out, path)
}

fn report(args: &[&str]) -> Output {
    mobius()
        .arg("report")
        .args(args)
        .output()
        .expect("spawn mobius")
}

fn records(path: &Path) -> (DataFile, Vec<FaultRecord>) {
    let data = DataFile::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let records = data
        .records()
        .expect("records")
        .map(|r| r.expect("a good record"))
        .collect();
    (data, records)
}

/// The report's rows (lines not starting with `#`) as (faults, rest).
fn rows(text: &str) -> Vec<(u64, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let faults = cols[2].parse().unwrap_or_else(|_| panic!("row {l:?}"));
            (faults, cols[4..].join(" "))
        })
        .collect()
}

#[test]
fn seq_touch_records_every_fault_with_kind_and_address() {
    if !kvm_or_skip("seq_touch_records_every_fault_with_kind_and_address") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (out, path) = record(dir.path(), "seq.data", &["--", "seq-touch", "pages=2000"]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    assert!(
        stderr(&out).contains("wrote 2000 records of 2000 faults seen (1 in 1), 0 dropped"),
        "{}",
        explain(&out)
    );
    let (data, recs) = records(&path);
    // seq-touch takes exactly `pages` demand-zero faults, nothing else.
    assert_eq!(recs.len(), 2000);
    let t = &data.trailer;
    assert_eq!(
        (t.records, t.seen, t.dropped, t.bad_frames),
        (2000, 2000, 0, 0)
    );
    assert!(t.final_frame && data.header.tsc_khz > 0);
    assert_eq!(
        (data.header.sample, data.header.title.as_str()),
        (1, "seq-touch pages=2000")
    );
    let base = recs[0].area_base;
    let mut pages = BTreeSet::new();
    for r in &recs {
        assert_eq!(r.fault_kind(), FaultKind::DemandZero, "{r:?}");
        assert_eq!(r.area(), AreaType::Normal, "{r:?}");
        assert_eq!(r.area_base, base, "one area");
        assert_eq!(r.pid, 0, "the kernel's own workload");
        // A write from ring 0, raised by the CPU: the instruction pointer
        // is the kernel's.
        assert_eq!(
            r.access & (access::WRITE | access::USER | access::TRAP),
            access::WRITE | access::TRAP
        );
        assert_ne!(
            r.access & (access::POOL_HIT | access::POOL_MISS),
            0,
            "a zero-pool sub-kind"
        );
        assert!(r.rip != 0 && r.cycles > 0);
        pages.insert(r.addr);
    }
    // One fault per page: the 2000 pages of the area, first byte each.
    let expected: BTreeSet<u64> = (0..2000).map(|i| base + i * 4096).collect();
    assert_eq!(pages, expected);
    // In time order.
    assert!(recs.windows(2).all(|w| w[0].tsc <= w[1].tsc));
    // The guest kernel's symbols name the workload's function.
    let rep = report(&[
        "-i",
        path.to_str().expect("utf-8"),
        "--sort",
        "symbol,process",
    ]);
    assert_eq!(rep.status.code(), Some(0), "{}", explain(&rep));
    let text = stdout(&rep);
    assert!(
        text.contains("# Samples: 2000 of event 'page-faults'"),
        "{text}"
    );
    assert!(text.contains("# Kinds: demand-zero 2000"), "{text}");
    let r = rows(&text);
    assert_eq!(r[0].0, 2000, "{text}");
    assert!(
        r[0].1.contains("seq_touch") || r[0].1.contains("write_page"),
        "{text}"
    );
    assert!(
        r[1].1.contains("0 [kernel]") || r[1].1.contains("[kernel]"),
        "{text}"
    );
}

#[test]
fn sampling_records_one_fault_in_n() {
    if !kvm_or_skip("sampling_records_one_fault_in_n") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (out, path) = record(
        dir.path(),
        "s.data",
        &["--sample", "16", "--", "seq-touch", "pages=2000"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let (data, recs) = records(&path);
    // The first fault, then every 16th: faults 0, 16, ..., 1984.
    assert_eq!(recs.len(), 125);
    assert_eq!(
        (data.trailer.seen, data.trailer.dropped, data.header.sample),
        (2000, 0, 16)
    );
    let base = recs[0].area_base;
    let addrs: Vec<u64> = recs.iter().map(|r| r.addr).collect();
    let expected: Vec<u64> = (0..125).map(|i| base + i * 16 * 4096).collect();
    assert_eq!(addrs, expected);
}

#[test]
fn report_names_the_function_that_touched_the_pages() {
    if !kvm_or_skip("report_names_the_function_that_touched_the_pages") {
        return;
    }
    let touch = program("touch");
    let dir = tempfile::tempdir().expect("tmp");
    let (out, path) = record(
        dir.path(),
        "t.data",
        &["--", touch.to_str().expect("utf-8"), "mmap", "100"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    assert!(
        stdout(&out).contains("touched 100 pages"),
        "{}",
        explain(&out)
    );
    let (data, recs) = records(&path);
    assert_eq!(data.trailer.dropped, 0);
    assert_eq!(
        record_kinds(&recs),
        summary_kinds(&stderr(&out)),
        "{}",
        explain(&out)
    );
    assert!(
        data.trailer
            .processes
            .contains(&(1, "/bin/touch".to_string())),
        "{:?}",
        data.trailer.processes
    );
    // touch() reads each page (demand-zero) then writes it (upgrade),
    // from ring 3.
    let ring3 = |k: FaultKind| {
        recs.iter()
            .filter(|r| {
                r.fault_kind() == k
                    && r.access & (access::USER | access::TRAP) == access::USER | access::TRAP
            })
            .count()
    };
    assert!(ring3(FaultKind::DemandZero) >= 100 && ring3(FaultKind::Upgrade) >= 100);
    let rep = report(&["-i", path.to_str().expect("utf-8"), "--sort", "symbol"]);
    assert_eq!(rep.status.code(), Some(0), "{}", explain(&rep));
    let text = stdout(&rep);
    let r = rows(&text);
    let top = &r[0];
    assert_eq!(top.0, 200, "{text}");
    assert!(
        top.1.starts_with("/bin/touch") && top.1.ends_with("touch::touch"),
        "{text}"
    );
    // Percentages first, sorted descending.
    assert!(r.windows(2).all(|w| w[0].0 >= w[1].0), "{text}");
    let process = report(&["-i", path.to_str().expect("utf-8"), "--sort", "process"]);
    let text = stdout(&process);
    assert!(
        rows(&text).iter().any(|(_, p)| p == "1 /bin/touch"),
        "{text}"
    );
}

/// The fault counts by kind of the run's one-line summary on stderr
/// (`mobius: guest page faults: N (demand-zero 21, image 146, ...)`).
fn summary_kinds(err: &str) -> Vec<(String, u64)> {
    let line = err
        .lines()
        .find(|l| l.starts_with("mobius: guest page faults: "))
        .unwrap_or_else(|| panic!("no summary line in {err}"));
    let inner = line
        .split('(')
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or("");
    let mut kinds: Vec<(String, u64)> = inner
        .split(", ")
        .filter_map(|kv| {
            let (k, v) = kv.rsplit_once(' ')?;
            Some((format!("faults.{k}"), v.parse().ok()?))
        })
        .collect();
    kinds.sort();
    kinds
}

/// The records' counts by kind, named as the summary names them.
fn record_kinds(recs: &[FaultRecord]) -> Vec<(String, u64)> {
    let mut kinds: Vec<(String, u64)> = FaultKind::ALL
        .iter()
        .map(|k| {
            let n = recs.iter().filter(|r| r.fault_kind() == *k).count() as u64;
            (k.name().to_string(), n)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    kinds.sort();
    kinds
}

#[test]
fn every_fault_of_a_pipeline_is_recorded_kind_by_kind() {
    let test = "every_fault_of_a_pipeline_is_recorded_kind_by_kind";
    if !kvm_or_skip(test) {
        return;
    }
    let bb = Path::new("/bin/busybox");
    if !bb.exists() {
        if std::env::var("MOBIUS_REQUIRE_KVM").as_deref() == Ok("1") {
            panic!("{test}: /bin/busybox missing (install busybox-static)");
        }
        eprintln!("{test}: skipped: no /bin/busybox");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    // Forks (copy-on-write, shared pages), execs and pipes: every fault
    // path of the VMM and four processes.
    let script = "seq 1 100 | sort -n | tail -n 1";
    let (out, path) = record(
        dir.path(),
        "bb.data",
        &["--", "/bin/busybox", "sh", "-c", script],
    );
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    assert_eq!(stdout(&out).trim(), "100");
    let (data, recs) = records(&path);
    assert_eq!(
        (data.trailer.dropped, data.trailer.seen),
        (0, recs.len() as u64)
    );
    // Exactly the faults the statistics counted, kind by kind.
    assert_eq!(
        record_kinds(&recs),
        summary_kinds(&stderr(&out)),
        "{}",
        explain(&out)
    );
    let pids: BTreeSet<u32> = recs.iter().map(|r| r.pid).filter(|&p| p != 0).collect();
    assert!(pids.len() >= 4, "{pids:?}");
    for pid in &pids {
        assert!(
            data.trailer
                .processes
                .contains(&(*pid, "/bin/busybox".to_string())),
            "{pid}: {:?}",
            data.trailer.processes
        );
    }
}

#[test]
fn a_tiny_ring_drops_records_and_counts_them() {
    if !kvm_or_skip("a_tiny_ring_drops_records_and_counts_them") {
        return;
    }
    let touch = program("touch");
    let dir = tempfile::tempdir().expect("tmp");
    // One read() faults 100 pages in the kernel: no safe point to drain
    // at in between, so an 8-record ring overflows.
    let (out, path) = record(
        dir.path(),
        "r.data",
        &[
            "--ring",
            "8",
            "--",
            touch.to_str().expect("utf-8"),
            "read",
            "100",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let (data, recs) = records(&path);
    let t = &data.trailer;
    assert!(t.dropped >= 92, "{t:?}");
    assert_eq!(recs.len() as u64 + t.dropped, t.seen, "{t:?}");
    assert!(t.final_frame);
    assert!(
        stderr(&out).contains(&format!("{} dropped", t.dropped)),
        "{}",
        explain(&out)
    );
    let rep = report(&["-i", path.to_str().expect("utf-8")]);
    let text = stdout(&rep);
    assert!(
        text.contains(&format!("# Total Lost Samples: {}\n", t.dropped)),
        "{text}"
    );
    // The same run with the default ring loses nothing; the read's faults
    // are the kernel's copies, without an instruction pointer.
    let (out, path) = record(
        dir.path(),
        "big.data",
        &["--", touch.to_str().expect("utf-8"), "read", "100"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let (data, recs) = records(&path);
    assert_eq!(data.trailer.dropped, 0);
    let copies = recs
        .iter()
        .filter(|r| r.access & access::TRAP == 0 && r.rip == 0)
        .count();
    assert!(copies >= 100, "{copies}");
}

#[test]
fn svg_heat_map_of_a_recording() {
    if !kvm_or_skip("svg_heat_map_of_a_recording") {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (out, path) = record(dir.path(), "seq.data", &["--", "seq-touch", "pages=500"]);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let svg = dir.path().join("heat.svg");
    let rep = report(&[
        "-i",
        path.to_str().expect("utf-8"),
        "--svg",
        svg.to_str().expect("utf-8"),
    ]);
    assert_eq!(rep.status.code(), Some(0), "{}", explain(&rep));
    let text = std::fs::read_to_string(&svg).expect("svg written");
    let cells = check_svg(&text);
    assert_eq!(cells.iter().sum::<u64>(), 500, "every fault in a cell");
    assert!(attr(&text, "data-faults") == Some(500));
}

// --- without KVM -------------------------------------------------------

fn synthetic(dir: &Path, records: &[FaultRecord]) -> PathBuf {
    let path = dir.join("synthetic.data");
    let header = Header {
        sample: 1,
        ring: 64,
        tsc_khz: 1000,
        title: "synthetic".into(),
        programs: Vec::new(),
    };
    let file = std::fs::File::create(&path).expect("create");
    let mut w = Writer::new(file, &header);
    for r in records {
        w.records(&r.to_bytes());
    }
    let trailer = Trailer {
        seen: records.len() as u64,
        final_frame: true,
        ..Trailer::default()
    };
    w.finish(&trailer).expect("finish");
    path
}

fn fault(tsc: u64, pid: u32, base: u64, addr: u64) -> FaultRecord {
    FaultRecord {
        tsc,
        addr,
        area_base: base,
        cycles: 100,
        pid,
        kind: FaultKind::DemandZero.index() as u8,
        access: access::WRITE,
        area_type: AreaType::Normal as u8,
        ..FaultRecord::default()
    }
}

#[test]
fn svg_cells_of_a_known_recording() {
    let dir = tempfile::tempdir().expect("tmp");
    // Area A: one page (a band of 2 rows, the top one used), touched once
    // per time column (120 columns): 120 cells. Area B: 16 pages touched
    // in the first instant: one column, 12 rows for its 16 pages.
    let mut recs: Vec<FaultRecord> = (0..120)
        .map(|i| fault(i * 1000, 1, 0x10000, 0x10000))
        .collect();
    recs.extend((0..16).map(|p| fault(0, 2, 0x40000, 0x40000 + p * 4096)));
    let path = synthetic(dir.path(), &recs);
    let svg = dir.path().join("out.svg");
    let rep = report(&[
        "-i",
        path.to_str().expect("utf-8"),
        "--svg",
        svg.to_str().expect("utf-8"),
        "--sort",
        "area",
    ]);
    assert_eq!(rep.status.code(), Some(0), "{}", explain(&rep));
    let text = std::fs::read_to_string(&svg).expect("svg");
    let cells = check_svg(&text);
    // 16 pages in 12 rows: row = page * 12 / 16, 12 distinct rows.
    assert_eq!(cells.len(), 120 + 12, "{text}");
    assert_eq!(cells.iter().sum::<u64>(), 136);
    assert_eq!(attr(&text, "data-rows"), Some(2 + 12));
    let t = stdout(&rep);
    let r = rows(&t);
    assert_eq!(r[0].0, 120, "{t}");
    assert_eq!(r[1].0, 16, "{t}");
}

#[test]
fn bad_data_files_are_one_clean_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = synthetic(
        dir.path(),
        &[fault(1, 1, 0x1000, 0x1000), fault(2, 1, 0x1000, 0x2000)],
    );
    let good = std::fs::read(&path).expect("read");
    let bad = dir.path().join("bad.data");
    let check = |bytes: Option<&[u8]>, needle: &str| {
        if let Some(b) = bytes {
            std::fs::write(&bad, b).expect("write");
        } else {
            let _ = std::fs::remove_file(&bad);
        }
        let out = report(&["-i", bad.to_str().expect("utf-8")]);
        common::assert_error(&out, BAD_RECORD_FILE, needle);
        assert!(stdout(&out).is_empty(), "{}", explain(&out));
    };
    check(None, "cannot open");
    check(
        Some(b"this is not a record file at all"),
        "not a mobius record file",
    );
    check(Some(&good[..good.len() - 1]), "truncated");
    check(Some(&good[..good.len() - 30]), "truncated");
    let mut v = good.clone();
    v[8] = 2;
    check(Some(&v), "version 2");
    // A record with an unknown kind in the middle: corrupt.
    let header_len = u32::from_le_bytes(good[12..16].try_into().expect("4")) as usize;
    let mut v = good.clone();
    v[header_len + 44] = 99;
    check(Some(&v), "corrupt");
    // No workload, or a bad --sort: usage errors.
    let out = mobius().arg("record").output().expect("spawn mobius");
    common::assert_error(&out, 2, "no workload given: mobius record");
    let out = report(&["-i", path.to_str().expect("utf-8"), "--sort", "dso"]);
    common::assert_error(&out, 2, "unknown --sort key 'dso'");
}

/// The value of the root's numeric attribute `name`.
fn attr(svg: &str, name: &str) -> Option<u64> {
    let at = svg.find(&format!("{name}=\""))? + name.len() + 2;
    svg[at..].split('"').next()?.parse().ok()
}

/// Check that `svg` is well-formed XML with an `<svg>` root (every tag
/// closed in order, attributes quoted, text without a bare `<` or `&`),
/// and return the `data-count` of each `class="cell"` element; their
/// number must match the root's `data-cells`.
fn check_svg(svg: &str) -> Vec<u64> {
    let mut stack: Vec<String> = Vec::new();
    let mut cells = Vec::new();
    let mut rest = svg.trim();
    assert!(rest.starts_with("<svg "), "root");
    while !rest.is_empty() {
        let lt = rest.find('<').unwrap_or(rest.len());
        let text = &rest[..lt];
        assert!(!text.contains('>'), "stray '>' in {text:?}");
        for (i, _) in text.match_indices('&') {
            let ent = &text[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;"]
                    .iter()
                    .any(|e| ent.starts_with(e)),
                "bare & in {text:?}"
            );
        }
        rest = &rest[lt..];
        if rest.is_empty() {
            break;
        }
        let gt = rest.find('>').expect("tag closed");
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "closing tag order"
            );
            continue;
        }
        let self_closing = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let name = body
            .split_whitespace()
            .next()
            .expect("tag name")
            .to_string();
        assert_eq!(body.matches('"').count() % 2, 0, "quotes in <{body}>");
        if body.contains("class=\"cell\"") {
            let count = body
                .split("data-count=\"")
                .nth(1)
                .and_then(|v| v.split('"').next())
                .and_then(|v| v.parse().ok())
                .expect("a cell's data-count");
            cells.push(count);
        }
        if !self_closing {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert_eq!(Some(cells.len() as u64), attr(svg, "data-cells"));
    cells
}
