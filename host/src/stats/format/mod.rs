//! `mobius stat` output, line for line the way `perf stat` prints it: the
//! table, CSV (`-x SEP`, [`csv`]) and JSON Lines (`-j`, [`json`]), each
//! optionally prefixed with the `-I` time stamp. Repeated runs (`-r N`) are
//! reported as mean and relative standard deviation of the mean, like perf.
//! A run of programs adds its process block ([`process`]): the table names
//! the unimplemented system calls under `syscalls.enosys`, and
//! `--per-process` prints one line per process in each style.
pub mod csv;
pub mod histogram;
pub mod json;
pub mod process;
pub mod table;

use mobius_shared::procstats::ProcessBlock;

use super::events::Event;

/// What perf prints in place of a value for a counter it could not count.
pub const NOT_SUPPORTED: &str = "<not supported>";

/// One event over all runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub name: String,
    pub unit: &'static str,
    /// Mean over the runs that counted it; `None`: no run did.
    pub mean: Option<f64>,
    /// Relative standard deviation of the mean in percent (perf's `+-`).
    pub stddev_pct: f64,
    pub metric: Option<(f64, &'static str)>,
    /// Mean time the counter ran, in ns (0 when not supported).
    pub runtime_ns: u64,
}

/// Mean and relative stddev of the mean per event, in first-run order;
/// `runtimes_ns[i]` is how long run `i` counted.
pub fn aggregate(runs: &[Vec<Event>], runtimes_ns: &[u64]) -> Vec<Aggregate> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .iter()
        .map(|e| {
            let counted: Vec<(&Event, u64)> = runs
                .iter()
                .zip(runtimes_ns.iter().chain(std::iter::repeat(&0)))
                .filter_map(|(r, t)| {
                    let x = r.iter().find(|x| x.name == e.name && x.value.is_some())?;
                    Some((x, *t))
                })
                .collect();
            let values: Vec<f64> = counted.iter().filter_map(|(x, _)| x.value).collect();
            let metrics: Vec<f64> = counted
                .iter()
                .filter_map(|(x, _)| x.metric.map(|m| m.0))
                .collect();
            let times: Vec<f64> = counted.iter().map(|(_, t)| *t as f64).collect();
            let (mean, sd) = mean_stddev(&values);
            let unit_of_metric = counted.iter().find_map(|(x, _)| x.metric.map(|m| m.1));
            Aggregate {
                name: e.name.clone(),
                unit: e.unit,
                mean: (!values.is_empty()).then_some(mean),
                stddev_pct: if mean != 0.0 { 100.0 * sd / mean } else { 0.0 },
                metric: unit_of_metric.map(|unit| (mean_stddev(&metrics).0, unit)),
                runtime_ns: mean_stddev(&times).0.round() as u64,
            }
        })
        .collect()
}

/// Mean and standard deviation of the mean (perf's definition).
pub fn mean_stddev(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, 0.0);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// One counter line, whatever the output style.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row<'a> {
    pub event: &'a str,
    /// `""` for counts, `msec` for times.
    pub unit: &'a str,
    /// `None`: [`NOT_SUPPORTED`].
    pub value: Option<f64>,
    /// Relative stddev in percent; `Some` only with `-r` above 1.
    pub variance: Option<f64>,
    /// Time the counter ran, in ns (perf's "run time of counter").
    pub runtime_ns: u64,
    pub metric: Option<(f64, &'a str)>,
}

impl Aggregate {
    /// This event's line over `runs` runs.
    pub fn row(&self, runs: usize) -> Row<'_> {
        Row {
            event: &self.name,
            unit: self.unit,
            value: self.mean,
            variance: (runs > 1).then_some(self.stddev_pct),
            runtime_ns: self.runtime_ns,
            metric: self.metric,
        }
    }
}

impl<'a> Row<'a> {
    /// One run's (or one interval's) line for `e`, counted for `runtime_ns`.
    pub fn of(e: &'a Event, runtime_ns: u64) -> Row<'a> {
        Row {
            event: &e.name,
            unit: e.unit,
            value: e.value,
            variance: None,
            runtime_ns: if e.value.is_some() { runtime_ns } else { 0 },
            metric: e.metric,
        }
    }
}

/// What comes before the counter value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    None,
    /// `-I`: time since the start, in ns.
    Interval(u64),
    /// The totals after `-I` lines (`--summary`): CSV lines start with `summary`.
    Summary,
}

/// The output style the options ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Style {
    Table,
    /// `-x SEP`.
    Csv(String),
    /// `-j`.
    Json,
}

/// Further lines of an event in the table, the way perf prints a second
/// metric: the event's name and the texts after its `#` (the first on the
/// event's own line when it has no metric, the rest under it).
pub type Notes = Vec<(String, Vec<String>)>;

/// The table's notes for `block`: the unimplemented numbers under
/// `syscalls.enosys`.
pub fn notes(block: Option<&ProcessBlock>) -> Notes {
    block
        .map(process::enosys_notes)
        .filter(|n| !n.is_empty())
        .map(|n| vec![("syscalls.enosys".to_string(), n)])
        .unwrap_or_default()
}

/// perf's time stamp: seconds and nanoseconds, `%lu.%09lu`.
pub fn seconds(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

impl Style {
    /// One counter line (no newline) in this style.
    pub fn line(&self, row: &Row, prefix: Prefix) -> String {
        match self {
            Style::Table => table::line(row, prefix),
            Style::Csv(sep) => csv::line(row, prefix, sep),
            Style::Json => json::line(row, prefix),
        }
    }

    /// The final report: the table with its header and footer (and the
    /// `notes` under their events), or one CSV or JSON line per counter.
    pub fn report(
        &self,
        title: &str,
        rows: &[Row],
        runs: usize,
        elapsed_s: f64,
        prefix: Prefix,
        notes: &Notes,
    ) -> String {
        match self {
            Style::Table => table::report(title, rows, runs, elapsed_s, notes),
            _ => rows.iter().map(|r| self.line(r, prefix) + "\n").collect(),
        }
    }

    /// `--per-process`: the process block of the last of `runs` runs, whose
    /// TSC ran at `tsc_khz`.
    pub fn processes(
        &self,
        title: &str,
        block: &ProcessBlock,
        tsc_khz: u64,
        runs: usize,
    ) -> String {
        match self {
            Style::Table => process::table(title, block, tsc_khz, runs),
            Style::Csv(sep) => process::csv(block, tsc_khz, sep),
            Style::Json => process::json(block, tsc_khz),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &str, v: f64) -> Event {
        Event {
            name: name.into(),
            value: Some(v),
            unit: "",
            metric: Some((v / 2.0, "us/fault")),
        }
    }

    #[test]
    fn aggregate_mean_and_relative_stddev() {
        let runs = vec![
            vec![ev("a", 10.0)],
            vec![ev("a", 12.0)],
            vec![ev("a", 14.0)],
        ];
        let a = &aggregate(&runs, &[100, 200, 300])[0];
        assert_eq!(a.mean, Some(12.0));
        // sd = 2, sd of mean = 2/sqrt(3) = 1.1547 -> 9.62 %
        assert!((a.stddev_pct - 9.6225).abs() < 1e-3, "{}", a.stddev_pct);
        assert_eq!(a.metric, Some((6.0, "us/fault")));
        assert_eq!(a.runtime_ns, 200);
    }

    #[test]
    fn an_event_no_run_counted_is_not_supported() {
        let runs = vec![
            vec![Event::unsupported("kvm.x")],
            vec![Event::unsupported("kvm.x")],
        ];
        let a = &aggregate(&runs, &[5, 5])[0];
        assert_eq!((a.mean, a.runtime_ns, a.metric), (None, 0, None));
        let row = a.row(2);
        assert_eq!(row.variance, Some(0.0));
    }

    #[test]
    fn time_stamps_are_seconds_dot_nine_digits() {
        assert_eq!(seconds(1_000_123_456), "1.000123456");
        assert_eq!(seconds(5_000), "0.000005000");
    }
}
