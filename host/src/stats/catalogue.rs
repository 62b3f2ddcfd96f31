//! Every event `mobius stat -e` accepts, with its one-line meaning, its unit,
//! whether it is in the default report (always, or only when the run can
//! count it), and whether `-I` can print it mid-run; `mobius stat
//! --list-events` prints this catalogue.
use std::fmt::Write as _;

use mobius_shared::stats::FaultKind;

/// One event of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventInfo {
    pub name: String,
    pub about: String,
    /// `""` for counts, `msec` for times (perf's units).
    pub unit: &'static str,
    /// Reported when `-e` is not given.
    pub default: bool,
    /// A default event left out of the default report when the run could
    /// not count it (perf's "skippable" default events), instead of shown
    /// as `<not supported>`: the system-call counts of a run without
    /// programs. Asked for with `-e`, it is `<not supported>` there.
    pub skippable: bool,
    /// Known from a guest snapshot, so `-I` prints it each interval (host
    /// counters are known only when the run has ended).
    pub sampled: bool,
}

/// A titled group of events, as `--list-events` prints them.
#[derive(Debug, Clone)]
pub struct Section {
    pub title: &'static str,
    pub events: Vec<EventInfo>,
}

fn info(name: &str, about: &str, default: bool, sampled: bool) -> EventInfo {
    EventInfo {
        name: name.to_string(),
        about: about.to_string(),
        unit: if name.starts_with("time.") {
            "msec"
        } else {
            ""
        },
        default,
        skippable: false,
        sampled,
    }
}

/// What one fault kind counts.
pub fn fault_about(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::DemandZero => "first touch of a normal page: a zeroed frame was mapped",
        FaultKind::ZeroPoolHit => {
            "demand-zero faults served from the pool of known-zero frames (part of faults.demand-zero)"
        }
        FaultKind::ZeroPoolMiss => {
            "demand-zero faults that zeroed a frame on the fault path (part of faults.demand-zero)"
        }
        FaultKind::Upgrade => "write to a valid clean page: made writable and dirty",
        FaultKind::Map => "a page of a MAP area (a given physical range) was mapped",
        FaultKind::FileReadIn => "a page of a FILE area was read in",
        FaultKind::Image => "a page of an IMAGE area (a program image) was read in",
        FaultKind::Callback => "a CALLBACK area's handler resolved the fault",
        FaultKind::Protection => {
            "access the area does not allow (write to read-only, user to kernel); not resolved"
        }
        FaultKind::Unresolved => "no area covers the address, or the fault could not be resolved",
        FaultKind::Shared => {
            "a frame that already existed was mapped (shared area, copy-on-write read, page already read in, /tmp file page mapped shared, program page mapped in place from the initramfs)"
        }
        FaultKind::Cow => "write to a copy-on-write page after a fork: copied into a new frame",
        FaultKind::CowReuse => {
            "write to a copy-on-write page no one else shares any more: taken over without a copy"
        }
    }
}

/// What one VM-exit counter of [`crate::ExitCounts`] counts.
pub fn exit_about(name: &str) -> &'static str {
    match name {
        "io_in" => "port reads (IN) that exited to the host",
        "io_out" => "port writes (OUT) that exited to the host",
        "mmio_read" => "MMIO reads that exited to the host",
        "mmio_write" => "MMIO writes that exited to the host (virtio notifications among them)",
        "hlt" => "HLT exits",
        "shutdown" => "shutdown exits (triple fault)",
        "interrupted" => "KVM_RUN interrupted by a signal other than a halt-watch tick",
        "halt_watch" => "KVM_RUN interrupted by a halt-watch tick (every 10 ms with KVM's APIC)",
        "other" => "exits of any other reason",
        "unknown_io" => "port accesses no device claimed (also in exits.io_in/io_out)",
        "unknown_mmio" => "MMIO accesses no device claimed (also in exits.mmio_read/mmio_write)",
        "bad_discard" => "discard requests outside guest RAM",
        "bad_console_write" => "console writes refused (buffer outside RAM or too long)",
        _ => "VM exits of this reason",
    }
}

/// (name, meaning, default) of the events in fixed tables.
type Entries = &'static [(&'static str, &'static str, bool)];

#[rustfmt::skip]
const PERF: Entries = &[
    ("page-faults", "perf's name for faults: every guest page fault", false),
    ("major-faults", "faults that read a page in: faults.file + faults.image", false),
    ("minor-faults", "the rest: page-faults - major-faults", false),
];

#[rustfmt::skip]
const MEMORY: Entries = &[
    ("frames.total", "usable 4 KiB physical frames", false),
    ("frames.free", "free frames", true),
    ("frames.used", "frames in use", true),
    ("frames.zeroed", "free frames known to be zero (the zero pool)", true),
    ("frames.exhausted", "times an allocation found no free frame", false),
    ("frames.free-errors", "frees of frames not in use: a guest kernel bug, counted in every build (want 0)", true),
    ("nodes.count", "address-space nodes (empty, reserved and mapped)", false),
    ("nodes.areas", "mapped areas alive", true),
    ("nodes.lookups", "address-space lookups", false),
];

#[rustfmt::skip]
const SYSCALLS: Entries = &[
    ("syscalls", "system calls the run's programs made, every process (from the final snapshot only)", true),
    ("syscalls.enosys", "of those, calls the guest kernel does not implement, answered ENOSYS (the table names their numbers)", true),
];

#[rustfmt::skip]
const TIMES: Entries = &[
    ("time.boot-to-ready", "guest kernel entry to workload start (guest TSC)", true),
    ("time.ready-to-done", "workload start to the final snapshot (guest TSC)", true),
    ("time.total", "the whole run as the host saw it", true),
];

#[rustfmt::skip]
const TRANSPORT: Entries = &[
    ("stats.snapshots", "statistics snapshots decoded", false),
    ("stats.notifications", "virtio notifications that carried statistics (0 over serial)", false),
    ("stats.malformed", "statistics frames dropped as malformed", false),
    ("stats.oversized", "statistics frames dropped as too long", false),
    ("stats.unknown-version", "statistics frames of a wire version this host does not speak", false),
    ("stats.bad-magic", "statistics frames without the wire magic", false),
    ("stats.transport", "virtio console requests the host could not use (queue not ready, rings or buffers outside guest RAM)", false),
];

fn table(entries: Entries, sampled: bool) -> Vec<EventInfo> {
    entries
        .iter()
        .map(|(name, about, default)| info(name, about, *default, sampled))
        .collect()
}

/// The catalogue, in report order.
pub fn sections() -> Vec<Section> {
    let mut faults = vec![info(
        "faults",
        "every page fault the guest's VMM handled, resolved or not (perf: page-faults)",
        true,
        true,
    )];
    faults.extend(
        FaultKind::ALL
            .iter()
            .map(|k| info(k.name(), fault_about(*k), true, true)),
    );
    let perf = table(PERF, true);
    let memory = table(MEMORY, true);
    // Only the exit snapshot carries the process block: not sampled.
    let syscalls = table(SYSCALLS, false)
        .into_iter()
        .map(|e| EventInfo {
            skippable: true,
            ..e
        })
        .collect();
    let mut exits = vec![info(
        "exits",
        "VM exits the host handled, all reasons",
        true,
        false,
    )];
    exits.extend(
        crate::ExitCounts::default()
            .iter()
            .map(|(n, _)| info(&format!("exits.{n}"), exit_about(n), false, false)),
    );
    let times = table(TIMES, false);
    let transport = table(TRANSPORT, false);
    vec![
        Section {
            title: "Guest page faults",
            events: faults,
        },
        Section {
            title: "perf software events (same counters, shown under the name asked for)",
            events: perf,
        },
        Section {
            title: "Guest memory",
            events: memory,
        },
        Section {
            title: "Guest system calls (runs of programs)",
            events: syscalls,
        },
        Section {
            title: "VM exits (host)",
            events: exits,
        },
        Section {
            title: "Times",
            events: times,
        },
        Section {
            title: "Statistics transport (host)",
            events: transport,
        },
    ]
}

/// Every fixed event, in report order.
pub fn all() -> Vec<EventInfo> {
    sections().into_iter().flat_map(|s| s.events).collect()
}

/// The events reported when `-e` is not given (the [`EventInfo::skippable`]
/// ones among them only when the run counts them).
pub fn default_names() -> Vec<String> {
    all()
        .into_iter()
        .filter(|e| e.default)
        .map(|e| e.name)
        .collect()
}

/// KVM's per-vCPU statistic `name` (`kvm.<name>`), if that is what it names.
pub fn kvm_stat(name: &str) -> Option<&str> {
    name.strip_prefix("kvm.").filter(|n| !n.is_empty())
}

/// The catalogue entry for `name`; `kvm.<name>` gets a generic one.
pub fn find(name: &str) -> Option<EventInfo> {
    if kvm_stat(name).is_some() {
        return Some(info(name, "KVM's per-vCPU statistic", false, false));
    }
    all().into_iter().find(|e| e.name == name)
}

/// `mobius stat --list-events`: every event and its meaning, like `perf list`.
pub fn list_text() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nList of events for mobius stat -e (* = reported when -e is not given;\n\
         + = reported then too when the run counts it, i.e. runs programs):"
    );
    let mut sections = sections();
    sections.push(Section {
        title: "KVM statistics (host kernel)",
        events: vec![info(
            "kvm.<name>",
            "KVM's per-vCPU statistic <name> as the running kernel offers it, e.g. kvm.exits, \
             kvm.pf_taken (<not supported> when it offers none by that name)",
            false,
            false,
        )],
    });
    for s in sections {
        let _ = writeln!(out, "\n{}:", s.title);
        for e in s.events {
            let mark = match (e.default, e.skippable) {
                (true, false) => '*',
                (true, true) => '+',
                _ => ' ',
            };
            let unit = if e.unit.is_empty() {
                String::new()
            } else {
                format!(" [{}]", e.unit)
            };
            let _ = writeln!(out, "  {:<24} {mark} {}{unit}", e.name, e.about);
        }
    }
    let _ = writeln!(
        out,
        "\n-I prints the guest counters (faults, perf events, memory) each interval;\n\
         the system calls and the host's counters are known only at the end (--summary).\n\
         --per-process adds one line per process of a run of programs (pid, parent,\n\
         status, system calls, ENOSYS calls, ring-3 page faults, CPU time, name)."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_explained() {
        let all = all();
        for (i, e) in all.iter().enumerate() {
            assert!(
                all[..i].iter().all(|x| x.name != e.name),
                "duplicate {}",
                e.name
            );
            assert!(!e.about.is_empty(), "{}", e.name);
            assert_ne!(e.about, "VM exits of this reason", "{}", e.name);
        }
        assert!(find("kvm.exits").is_some());
        assert!(find("kvm.").is_none());
        assert!(find("page-faults").is_some());
        assert_eq!(find("time.total").map(|e| e.unit), Some("msec"));
    }

    #[test]
    fn list_marks_exactly_the_default_set() {
        let text = list_text();
        let marked = |marks: &[&str]| -> Vec<String> {
            text.lines()
                .filter_map(|l| {
                    let mut w = l.split_whitespace();
                    let name = w.next()?;
                    marks.contains(&w.next()?).then(|| name.to_string())
                })
                .collect()
        };
        assert_eq!(marked(&["*", "+"]), default_names());
        assert_eq!(marked(&["+"]), ["syscalls", "syscalls.enosys"]);
        assert!(text.contains("major-faults"));
    }

    #[test]
    fn syscall_events_are_skippable_defaults_known_at_the_end() {
        for name in ["syscalls", "syscalls.enosys"] {
            let e = find(name).expect(name);
            assert!(e.default && e.skippable && !e.sampled, "{e:?}");
            assert_eq!(e.unit, "");
        }
        assert!(all().iter().filter(|e| e.skippable).all(|e| e.default));
    }
}
