//! What a `--disk` is: its specification (`PATH[,rw]`, the `--disk-fail`
//! ranges), the file opened and checked for it ([`DiskImage`]), why one is
//! refused ([`DiskError`], exit status [`BAD_DISK`]) and what its device
//! counted ([`DiskCounters`], summed up at the end of a run).
//!
//! [`BAD_DISK`]: mobius_shared::exit::host::BAD_DISK
use std::fmt;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use mobius_shared::virtio_mmio::blk::SECTOR_SIZE;
use mobius_shared::virtio_mmio::MAX_DISKS;

/// A disk as asked for: `mobius run --disk PATH[,rw]`, read-only unless
/// `,rw`; reads of the `fail` sectors fail (`--disk-fail`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskConfig {
    pub path: PathBuf,
    pub writable: bool,
    /// `,root`: the guest mounts this disk's file system at `/` and runs
    /// PROGRAM from it (only the first disk may be the root).
    pub root: bool,
    pub fail: Vec<FailRange>,
}

impl DiskConfig {
    /// Parse `PATH[,OPTION]...`; the options are `rw` (`ro`, the default,
    /// is accepted too) and `root`. A path with a comma cannot be given.
    pub fn parse(s: &str) -> Result<DiskConfig, String> {
        let mut parts = s.split(',');
        let path = parts.next().unwrap_or_default();
        if path.is_empty() {
            return Err("expected PATH[,rw] with a non-empty PATH".into());
        }
        let mut writable = false;
        let mut root = false;
        for option in parts {
            match option {
                "rw" => writable = true,
                "ro" => writable = false,
                "root" => root = true,
                other => {
                    return Err(format!(
                        "unknown disk option '{other}' (the options are rw, ro and root)"
                    ))
                }
            }
        }
        Ok(DiskConfig {
            path: PathBuf::from(path),
            writable,
            root,
            fail: Vec::new(),
        })
    }
}

/// Sectors `first..=last` whose reads fail (`--disk-fail SECTOR[-SECTOR]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailRange {
    pub first: u64,
    pub last: u64,
}

impl FailRange {
    /// Parse `SECTOR` or `FIRST-LAST` (decimal, `FIRST <= LAST`).
    pub fn parse(s: &str) -> Result<FailRange, String> {
        let number = |t: &str| {
            t.trim()
                .parse::<u64>()
                .map_err(|_| format!("'{t}' is not a sector number (expected SECTOR[-SECTOR])"))
        };
        let (first, last) = match s.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => {
                let n = number(s)?;
                (n, n)
            }
        };
        if first > last {
            return Err(format!("sector range {first}-{last} is empty"));
        }
        Ok(FailRange { first, last })
    }

    /// Whether the `count` sectors from `sector` meet this range.
    pub fn meets(&self, sector: u64, count: u64) -> bool {
        count > 0 && sector <= self.last && sector.saturating_add(count - 1) >= self.first
    }
}

/// Why a `--disk` cannot be used (exit status `BAD_DISK`).
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("disk {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("disk {}: not a regular file", path.display())]
    NotAFile { path: PathBuf },
    #[error("disk {}: its size, {size} bytes, is not a multiple of 512", path.display())]
    Size { path: PathBuf, size: u64 },
    #[error("disk {}: ',rw' asked for, but the file cannot be opened for writing ({source})", path.display())]
    ReadOnlyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{count} disks given; at most {MAX_DISKS} are offered")]
    TooMany { count: usize },
}

/// A disk's file, opened and checked.
#[derive(Debug)]
pub struct DiskImage {
    pub path: PathBuf,
    pub file: File,
    /// Capacity in 512-byte sectors.
    pub sectors: u64,
    pub writable: bool,
    pub fail: Vec<FailRange>,
}

impl DiskImage {
    /// Open `config`'s file (read-write with `,rw`) and check it: a regular
    /// file whose size is a multiple of 512.
    pub fn open(config: &DiskConfig) -> Result<DiskImage, DiskError> {
        let path = &config.path;
        // Readable first: a missing or unreadable file is said as such,
        // whatever the mode asked for.
        let file = File::open(path).map_err(|source| DiskError::Open {
            path: path.clone(),
            source,
        })?;
        let meta = file.metadata().map_err(|source| DiskError::Open {
            path: path.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(DiskError::NotAFile { path: path.clone() });
        }
        let size = meta.len();
        if !size.is_multiple_of(SECTOR_SIZE) {
            return Err(DiskError::Size {
                path: path.clone(),
                size,
            });
        }
        let file = if config.writable {
            open_rw(path)?
        } else {
            file
        };
        Ok(DiskImage {
            path: path.clone(),
            file,
            sectors: size / SECTOR_SIZE,
            writable: config.writable,
            fail: config.fail.clone(),
        })
    }

    /// Open every disk of a run, in order.
    pub fn open_all(configs: &[DiskConfig]) -> Result<Vec<DiskImage>, DiskError> {
        if configs.len() > MAX_DISKS {
            return Err(DiskError::TooMany {
                count: configs.len(),
            });
        }
        configs.iter().map(DiskImage::open).collect()
    }
}

fn open_rw(path: &Path) -> Result<File, DiskError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| DiskError::ReadOnlyFile {
            path: path.to_path_buf(),
            source,
        })
}

/// What one disk's device did in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskCounters {
    /// Requests completed with VIRTIO_BLK_S_OK.
    pub ok: u64,
    /// Requests refused (IOERR or UNSUPP) for what the guest asked, and
    /// chains that could not even be answered (no writable status byte).
    pub bad_requests: u64,
    /// Reads failed on purpose (`--disk-fail`).
    pub injected: u64,
    /// Requests the host's file failed (IOERR).
    pub io_errors: u64,
    /// Notifications of a queue that is not there or not usable.
    pub bad_notifies: u64,
    /// Completion interrupts KVM refused.
    pub irq_errors: u64,
    /// The first refused request's reason.
    pub first_bad: Option<&'static str>,
}

impl DiskCounters {
    /// Whether any request failed (and the run's end says so).
    pub fn any_failed(&self) -> bool {
        self.bad_requests > 0 || self.injected > 0 || self.io_errors > 0 || self.bad_notifies > 0
    }

    /// Add `other`'s counts (a worker's batch).
    pub fn add(&mut self, other: &DiskCounters) {
        self.ok = self.ok.saturating_add(other.ok);
        self.bad_requests = self.bad_requests.saturating_add(other.bad_requests);
        self.injected = self.injected.saturating_add(other.injected);
        self.io_errors = self.io_errors.saturating_add(other.io_errors);
        self.bad_notifies = self.bad_notifies.saturating_add(other.bad_notifies);
        self.irq_errors = self.irq_errors.saturating_add(other.irq_errors);
        if self.first_bad.is_none() {
            self.first_bad = other.first_bad;
        }
    }
}

/// One disk's report at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskReport {
    pub index: usize,
    pub path: PathBuf,
    pub counters: DiskCounters,
}

impl DiskReport {
    /// The warning line, if any request failed:
    /// `mobius: warning: disk 0 (/path): 3 bad requests (first: ...), 2 read failures injected`.
    pub fn warning(&self) -> Option<String> {
        self.counters.any_failed().then(|| self.to_string())
    }
}

impl fmt::Display for DiskReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counters;
        let mut parts = Vec::new();
        let bad = c.bad_requests.saturating_add(c.bad_notifies);
        if bad > 0 {
            let s = if bad == 1 { "" } else { "s" };
            match c.first_bad {
                Some(why) => parts.push(format!("{bad} bad request{s} (first: {why})")),
                None => parts.push(format!("{bad} bad request{s}")),
            }
        }
        if c.injected > 0 {
            let s = if c.injected == 1 { "" } else { "s" };
            parts.push(format!("{} read failure{s} injected", c.injected));
        }
        if c.io_errors > 0 {
            let s = if c.io_errors == 1 { "" } else { "s" };
            parts.push(format!("{} host I/O error{s}", c.io_errors));
        }
        if parts.is_empty() {
            parts.push(format!("{} requests, none failed", c.ok));
        }
        write!(
            f,
            "mobius: warning: disk {} ({}): {}",
            self.index,
            self.path.display(),
            parts.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn config(path: &Path, writable: bool) -> DiskConfig {
        DiskConfig {
            path: path.to_path_buf(),
            writable,
            root: false,
            fail: Vec::new(),
        }
    }

    #[test]
    fn files_are_checked_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.img");
        std::fs::write(&good, vec![0u8; 4096]).unwrap();
        let image = DiskImage::open(&config(&good, true)).unwrap();
        assert_eq!((image.sectors, image.writable), (8, true));
        let empty = dir.path().join("empty.img");
        std::fs::File::create(&empty).unwrap();
        assert_eq!(DiskImage::open(&config(&empty, false)).unwrap().sectors, 0);

        let odd = dir.path().join("odd.img");
        std::fs::File::create(&odd)
            .unwrap()
            .write_all(&[1; 1000])
            .unwrap();
        assert!(matches!(
            DiskImage::open(&config(&odd, false)),
            Err(DiskError::Size { size: 1000, .. })
        ));
        assert!(matches!(
            DiskImage::open(&config(&dir.path().join("missing"), false)),
            Err(DiskError::Open { .. })
        ));
        assert!(matches!(
            DiskImage::open(&config(dir.path(), false)),
            Err(DiskError::NotAFile { .. })
        ));
        let four = vec![config(&good, false); MAX_DISKS + 1];
        assert!(matches!(
            DiskImage::open_all(&four),
            Err(DiskError::TooMany { count: 4 })
        ));
        assert_eq!(DiskImage::open_all(&four[..MAX_DISKS]).unwrap().len(), 3);
    }

    #[test]
    fn fail_ranges_meet_requests() {
        let r = FailRange { first: 4, last: 5 };
        assert!(r.meets(4, 1) && r.meets(5, 1) && r.meets(0, 5) && r.meets(5, 100));
        assert!(!r.meets(0, 4) && !r.meets(6, 10) && !r.meets(4, 0));
        assert!(!r.meets(u64::MAX, u64::MAX));
        let all = FailRange {
            first: 0,
            last: u64::MAX,
        };
        assert!(all.meets(u64::MAX, 1));
    }

    #[test]
    fn the_report_line() {
        let mut report = DiskReport {
            index: 0,
            path: "/d.img".into(),
            counters: DiskCounters {
                ok: 5,
                ..DiskCounters::default()
            },
        };
        assert_eq!(report.warning(), None);
        report.counters.bad_requests = 3;
        report.counters.injected = 2;
        report.counters.first_bad = Some("sectors past the end of the disk");
        assert_eq!(
            report.warning().as_deref(),
            Some(
                "mobius: warning: disk 0 (/d.img): 3 bad requests (first: sectors past \
                 the end of the disk), 2 read failures injected"
            )
        );
        let mut sum = DiskCounters::default();
        sum.add(&report.counters);
        sum.add(&DiskCounters {
            bad_requests: u64::MAX,
            first_bad: Some("other"),
            ..DiskCounters::default()
        });
        assert_eq!(sum.bad_requests, u64::MAX);
        assert_eq!(sum.first_bad, Some("sectors past the end of the disk"));
    }
}
