//! Where `mobius stat` writes its counters: standard error, like perf, or
//! the file of `-o FILE` (`--append` adds to it). The `-I` lines are written
//! from the vCPU's thread as snapshots arrive, the report from the main
//! thread at the end, so the sink is shared. Both happen under the seccomp
//! filter, which lets the thread write to the file ([`Output::fd`]).
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::{Arc, Mutex};

struct Sink {
    out: Box<dyn Write + Send>,
    /// The first write error; reported once at the end.
    error: Option<io::Error>,
}

/// The shared output of one `mobius stat`, and the file's descriptor when
/// it is not standard error.
#[derive(Clone)]
pub struct Output(Arc<Mutex<Sink>>, Option<RawFd>);

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Output")
    }
}

impl Output {
    fn new(out: Box<dyn Write + Send>, fd: Option<RawFd>) -> Output {
        Output(Arc::new(Mutex::new(Sink { out, error: None })), fd)
    }

    /// Standard error.
    pub fn stderr() -> Output {
        Output::new(Box::new(io::stderr()), None)
    }

    /// `path`, emptied first unless `append`.
    pub fn file(path: &Path, append: bool) -> io::Result<Output> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)?;
        let fd = file.as_raw_fd();
        Ok(Output::new(Box::new(io::BufWriter::new(file)), Some(fd)))
    }

    /// The `-o` file's descriptor (open until the last clone is dropped),
    /// which the seccomp filter must let the vCPU thread write to; `None`
    /// for standard error.
    pub fn fd(&self) -> Option<RawFd> {
        self.1
    }

    /// Write `text`; an error is kept for [`Output::finish`].
    pub fn write(&self, text: &str) {
        let mut sink = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if sink.error.is_some() {
            return;
        }
        if let Err(e) = sink.out.write_all(text.as_bytes()) {
            sink.error = Some(e);
        }
    }

    /// Flush; the first error of any write or of the flush.
    pub fn finish(&self) -> io::Result<()> {
        let mut sink = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = sink.error.take() {
            return Err(e);
        }
        sink.out.flush()
    }
}

/// perf's first line in an `-o` file (not for JSON): `# started on ` and the
/// local time as `ctime(3)` prints it, then an empty line.
pub fn started_on() -> String {
    format!("# started on {}\n\n", ctime_now())
}

/// The local time now, like `ctime(3)` without its newline:
/// `Thu Jan  1 00:00:00 1970`.
fn ctime_now() -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // time_t is i64 on x86-64 (glibc and musl alike).
    let t = i64::try_from(now).unwrap_or(0);
    // SAFETY: an all-zero `tm` is a valid value (integers and a null zone
    // pointer); localtime_r reads `t` and writes only `tm`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    let day = usize::try_from(tm.tm_wday).ok().and_then(|i| DAYS.get(i));
    let month = usize::try_from(tm.tm_mon).ok().and_then(|i| MONTHS.get(i));
    match (ok, day, month) {
        (true, Some(day), Some(month)) => format!(
            "{day} {month} {:>2} {:02}:{:02}:{:02} {}",
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec,
            i64::from(tm.tm_year) + 1900
        ),
        _ => format!("{now} seconds since the epoch"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_on_looks_like_ctime() {
        let s = started_on();
        let rest = s.strip_prefix("# started on ").expect("prefix");
        assert!(rest.ends_with("\n\n"), "{s:?}");
        let words: Vec<&str> = rest.split_whitespace().collect();
        assert_eq!(words.len(), 5, "{s:?}");
        assert_eq!(words[3].len(), 8, "{s:?}");
    }

    #[test]
    fn file_truncates_or_appends() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("out");
        for (append, text) in [(false, "a\n"), (true, "b\n")] {
            let o = Output::file(&path, append).expect("open");
            o.write(text);
            o.finish().expect("flush");
        }
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "a\nb\n");
        let o = Output::file(&path, false).expect("open");
        o.write("c\n");
        o.finish().expect("flush");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "c\n");
    }
}
