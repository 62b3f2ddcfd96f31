//! `mobius report`: a `mobius record` file's faults and cycles by area, by
//! process and by function, printed the way `perf report --stdio` prints
//! (header lines starting with `#`, the percentage first, rows sorted by
//! it, descending), and optionally a heat map ([`super::svg`]).
//!
//! Functions: an instruction pointer a CPU trap recorded in ring 3 is
//! looked up in the ELF symbols of the process's program (found by the
//! name the guest's statistics gave the pid, among the programs the header
//! lists), one in ring 0 in the guest kernel's; a fault the kernel raised
//! while copying user memory for a system call has no instruction pointer
//! and is `[kernel copy]`. A program whose file changed since the
//! recording (size or FNV-1a hash) is not used: its faults show addresses.
use std::collections::HashMap;
use std::fmt::Write as _;

use mobius_shared::record::{access, area_flags, AreaType, FaultRecord};
use mobius_shared::stats::FaultKind;

use super::command::kernel_bytes;
use super::elf::ElfInfo;
use super::error::{RecordError, RecordFileError};
use super::file::{fnv1a, DataFile, Program, KERNEL};
use crate::cli::ReportArgs;

/// The tables `--sort` can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Area,
    Process,
    Symbol,
}

/// `mobius report`: the exit status.
pub fn report(args: &ReportArgs) -> i32 {
    match run_report(args) {
        Ok(text) => {
            // A reader that stops early (`| head`) is not an error.
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            0
        }
        Err(e) => {
            eprintln!("mobius: error: {e}");
            e.exit_status()
        }
    }
}

fn tables(sort: &[String]) -> Result<Vec<Table>, RecordError> {
    if sort.is_empty() {
        return Ok(vec![Table::Area, Table::Process, Table::Symbol]);
    }
    sort.iter()
        .map(|k| match k.trim() {
            "area" => Ok(Table::Area),
            "process" | "pid" | "comm" => Ok(Table::Process),
            "symbol" | "sym" | "function" => Ok(Table::Symbol),
            other => Err(RecordError::BadSort(other.to_string())),
        })
        .collect()
}

/// The report's text (and the SVG, when asked for).
pub fn run_report(args: &ReportArgs) -> Result<String, RecordError> {
    let tables = tables(&args.sort)?;
    let file_err = |e: RecordFileError| RecordError::File {
        path: args.input.clone(),
        source: e,
    };
    let data = DataFile::open(&args.input).map_err(file_err)?;
    let symbols = Symbolizer::new(&data);
    let mut agg = Aggregate::default();
    for r in data.records().map_err(file_err)? {
        agg.add(&r.map_err(file_err)?, &symbols);
    }
    let mut out = header_text(&data, &agg, &symbols);
    for t in tables {
        out.push_str(&agg.table(t, &symbols));
    }
    if let Some(svg_path) = &args.svg {
        let svg = super::svg::draw(&data, &agg.area_bands(), agg.time_range()).map_err(file_err)?;
        std::fs::write(svg_path, svg).map_err(|e| RecordError::Write {
            path: svg_path.clone(),
            source: e,
        })?;
    }
    Ok(out)
}

/// Instruction pointers to function names.
pub struct Symbolizer {
    /// Per program of the header: its symbols, if its file is unchanged.
    programs: Vec<(Program, Option<ElfInfo>)>,
    /// pid -> program index.
    by_pid: HashMap<u32, usize>,
    names: HashMap<u32, String>,
    /// The only program besides the kernel, if there is one.
    only: Option<usize>,
    pub warnings: Vec<String>,
}

impl Symbolizer {
    pub fn new(data: &DataFile) -> Self {
        let mut warnings = Vec::new();
        let programs: Vec<(Program, Option<ElfInfo>)> = data
            .header
            .programs
            .iter()
            .map(|p| {
                let bytes = if p.guest_path == KERNEL {
                    kernel_bytes(p)
                } else {
                    std::fs::read(&p.host_path).ok().map(std::borrow::Cow::Owned)
                };
                let elf = match bytes {
                    Some(b) if b.len() as u64 == p.size && fnv1a(&b) == p.hash => ElfInfo::parse(&b),
                    Some(_) => {
                        warnings.push(format!("{}: {} is not the file recorded (size or hash differ): its functions are not named", p.guest_path, shown(&p.host_path)));
                        None
                    }
                    None => {
                        warnings.push(format!("{}: cannot read {}: its functions are not named", p.guest_path, shown(&p.host_path)));
                        None
                    }
                };
                (p.clone(), elf)
            })
            .collect();
        let names: HashMap<u32, String> = data.trailer.processes.iter().cloned().collect();
        let users: Vec<usize> = (0..programs.len())
            .filter(|&i| programs[i].0.guest_path != KERNEL)
            .collect();
        let by_pid = names
            .iter()
            .filter_map(|(pid, name)| {
                let i = users.iter().copied().find(|&i| {
                    let g = &programs[i].0.guest_path;
                    !name.is_empty() && (g == name || g.ends_with(name.as_str()))
                })?;
                Some((*pid, i))
            })
            .collect();
        Symbolizer {
            only: (users.len() == 1).then(|| users[0]),
            programs,
            by_pid,
            names,
            warnings,
        }
    }

    /// The program pid ran, by name, or the only program of the run.
    fn program_of(&self, pid: u32) -> Option<usize> {
        self.by_pid
            .get(&pid)
            .copied()
            .or(if pid == 0 { None } else { self.only })
    }

    /// `pid` and what it ran, for the process and area tables.
    pub fn process_name(&self, pid: u32) -> String {
        if pid == 0 {
            return "[kernel]".into();
        }
        match (self.names.get(&pid), self.program_of(pid)) {
            (Some(n), _) => n.clone(),
            (None, Some(i)) => self.programs[i].0.guest_path.clone(),
            (None, None) => "?".into(),
        }
    }

    /// The function (and the object it is in) a record's fault came from.
    pub fn symbol(&self, r: &FaultRecord) -> (String, String) {
        if r.access & access::TRAP == 0 {
            return ("[kernel copy]".into(), "[kernel]".into());
        }
        let user = r.access & access::USER != 0;
        let program = if user {
            self.program_of(r.pid)
        } else {
            self.programs.iter().position(|p| p.0.guest_path == KERNEL)
        };
        let object = match program {
            Some(i) => self.programs[i].0.guest_path.clone(),
            None if user => "[unknown]".into(),
            None => "[kernel]".into(),
        };
        let name = program
            .and_then(|i| self.programs[i].1.as_ref())
            .and_then(|e| e.lookup(r.rip))
            .map(|(s, _)| s.name.clone());
        (name.unwrap_or_else(|| format!("{:#x}", r.rip)), object)
    }
}

fn shown(host_path: &str) -> &str {
    if host_path.is_empty() {
        "the bundled kernel"
    } else {
        host_path
    }
}

/// Faults and cycles of one row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sum {
    pub faults: u64,
    pub cycles: u64,
}

impl Sum {
    fn add(&mut self, r: &FaultRecord) {
        self.faults += 1;
        self.cycles = self.cycles.saturating_add(r.cycles);
    }
}

/// An area's key: process, node base, type, flags.
pub type AreaKey = (u32, u64, u8, u8);

/// One area's row and the addresses its faults touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AreaSum {
    pub sum: Sum,
    pub lowest: u64,
    pub highest: u64,
}

/// An area as the heat map draws it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Band {
    pub key: AreaKey,
    pub label: String,
    pub faults: u64,
    /// The touched pages, first and last.
    pub first_page: u64,
    pub last_page: u64,
}

/// Every row of every table, built in one pass over the records.
#[derive(Debug, Default)]
pub struct Aggregate {
    pub total: Sum,
    pub areas: HashMap<AreaKey, AreaSum>,
    pub processes: HashMap<u32, Sum>,
    pub symbols: HashMap<(String, String), Sum>,
    pub kinds: [u64; FaultKind::COUNT],
    pub first_tsc: u64,
    pub last_tsc: u64,
}

impl Aggregate {
    pub fn add(&mut self, r: &FaultRecord, symbols: &Symbolizer) {
        if self.total.faults == 0 {
            self.first_tsc = r.tsc;
            self.last_tsc = r.tsc;
        }
        self.first_tsc = self.first_tsc.min(r.tsc);
        self.last_tsc = self.last_tsc.max(r.tsc);
        self.total.add(r);
        self.kinds[usize::from(r.kind) % FaultKind::COUNT] += 1;
        let key = (r.pid, r.area_base, r.area_type, r.area_flags);
        let a = self.areas.entry(key).or_insert(AreaSum {
            sum: Sum::default(),
            lowest: r.addr,
            highest: r.addr,
        });
        a.sum.add(r);
        a.lowest = a.lowest.min(r.addr);
        a.highest = a.highest.max(r.addr);
        self.processes.entry(r.pid).or_default().add(r);
        self.symbols.entry(symbols.symbol(r)).or_default().add(r);
    }

    /// First and last record's TSC.
    pub fn time_range(&self) -> (u64, u64) {
        (self.first_tsc, self.last_tsc)
    }

    /// The areas, most faults first, for the heat map.
    pub fn area_bands(&self) -> Vec<Band> {
        let mut v: Vec<Band> = self
            .areas
            .iter()
            .map(|(k, a)| Band {
                key: *k,
                label: area_label(k),
                faults: a.sum.faults,
                first_page: a.lowest >> 12,
                last_page: a.highest >> 12,
            })
            .collect();
        v.sort_by(|a, b| b.faults.cmp(&a.faults).then(a.key.cmp(&b.key)));
        v
    }

    fn table(&self, t: Table, s: &Symbolizer) -> String {
        let mut rows: Vec<(Sum, String)> = match t {
            Table::Area => self
                .areas
                .iter()
                .map(|(k, a)| {
                    let name = format!(
                        "{:>5} {:<16} {}  touched {:#x}..{:#x}",
                        k.0,
                        s.process_name(k.0),
                        area_label(k),
                        a.lowest,
                        a.highest
                    );
                    (a.sum, name)
                })
                .collect(),
            Table::Process => self
                .processes
                .iter()
                .map(|(pid, sum)| (*sum, format!("{pid:>5}  {}", s.process_name(*pid))))
                .collect(),
            Table::Symbol => self
                .symbols
                .iter()
                .map(|((name, object), sum)| (*sum, format!("{object:<16}  {name}")))
                .collect(),
        };
        rows.sort_by(|a, b| {
            b.0.faults
                .cmp(&a.0.faults)
                .then(b.0.cycles.cmp(&a.0.cycles))
                .then(a.1.cmp(&b.1))
        });
        let what = match t {
            Table::Area => "  pid process           area",
            Table::Process => "  pid  process",
            Table::Symbol => "Object            Function",
        };
        let title = match t {
            Table::Area => "area",
            Table::Process => "process",
            Table::Symbol => "symbol",
        };
        let mut out = String::new();
        let _ = writeln!(out, "#\n# By {title}\n#");
        let _ = writeln!(out, "# Overhead    Cycles   Faults          Cycles  {what}");
        let _ = writeln!(
            out,
            "# ........  ........  .......  ..............  {}",
            ".".repeat(what.trim().len())
        );
        let _ = writeln!(out, "#");
        for (sum, name) in rows {
            let _ = writeln!(
                out,
                "  {:>7.2}%  {:>7.2}%  {:>7}  {:>14}  {name}",
                percent(sum.faults, self.total.faults),
                percent(sum.cycles, self.total.cycles),
                sum.faults,
                sum.cycles
            );
        }
        out.push('\n');
        out
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// `normal rw-x u 0x7f0000000000` style: type, flags, node base.
pub fn area_label(k: &AreaKey) -> String {
    let (_, base, kind, flags) = *k;
    let kind = AreaType::from_u8(kind).unwrap_or(AreaType::None).name();
    let f = |bit: u8, c: char| if flags & bit != 0 { c } else { '-' };
    let perms = format!(
        "r{}{}{}",
        f(area_flags::WRITE, 'w'),
        f(area_flags::EXEC, 'x'),
        f(area_flags::USER, 'u')
    );
    if kind == "none" {
        return "[no area]".into();
    }
    format!("{kind:<8} {perms} {base:#x}")
}

fn header_text(data: &DataFile, agg: &Aggregate, s: &Symbolizer) -> String {
    let (h, t) = (&data.header, &data.trailer);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# mobius report of {} ('{}')",
        data.path.display(),
        h.title
    );
    let _ = writeln!(out, "#");
    let _ = writeln!(out, "# Total Lost Samples: {}", t.dropped);
    let _ = writeln!(out, "#");
    let _ = writeln!(
        out,
        "# Samples: {} of event 'page-faults' (1 in {} of {} faults seen; ring {} records)",
        t.records, h.sample, t.seen, h.ring
    );
    let cycles = match h.tsc_khz {
        0 => format!("{} cycles", agg.total.cycles),
        khz => format!(
            "{} cycles, {:.3} ms at {khz} kHz",
            agg.total.cycles,
            agg.total.cycles as f64 / khz as f64
        ),
    };
    let _ = writeln!(
        out,
        "# Event count (approx.): {} faults; fault handler time {cycles}",
        agg.total.faults
    );
    let kinds: Vec<String> = FaultKind::ALL
        .iter()
        .filter(|k| agg.kinds[k.index()] > 0)
        .map(|k| {
            format!(
                "{} {}",
                k.name().trim_start_matches("faults."),
                agg.kinds[k.index()]
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "# Kinds: {}",
        if kinds.is_empty() {
            "none".into()
        } else {
            kinds.join(", ")
        }
    );
    if t.bad_frames > 0 {
        let _ = writeln!(
            out,
            "# Lost or refused frames: {} (their records are missing)",
            t.bad_frames
        );
    }
    if !t.final_frame {
        let _ = writeln!(out, "# warning: the guest's final frame did not arrive (exit status {}): counts may be short", t.status);
    }
    for w in &s.warnings {
        let _ = writeln!(out, "# warning: {w}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys() {
        assert_eq!(tables(&[]).expect("default").len(), 3);
        let keys = ["symbol".to_string(), "area".to_string()];
        assert_eq!(tables(&keys).expect("two"), [Table::Symbol, Table::Area]);
        assert!(matches!(
            tables(&["dso".to_string()]),
            Err(RecordError::BadSort(_))
        ));
    }

    #[test]
    fn area_labels() {
        let k = (
            1,
            0x7f00_0000_0000,
            AreaType::Normal as u8,
            area_flags::USER | area_flags::WRITE,
        );
        assert_eq!(area_label(&k), "normal   rw-u 0x7f0000000000");
        assert_eq!(area_label(&(0, 0, 0, 0)), "[no area]");
    }
}
