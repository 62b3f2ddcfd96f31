//! The `mobius record` data file (`mobius.data`), version 1.
//!
//! A header (written with the first records, once the guest's first frame
//! has told its TSC frequency), the records as they arrive (streamed
//! through a `BufWriter`: the host never holds more than a buffer of them),
//! and a trailer written when the run ends. Every integer is little-endian;
//! a string is a `u32` byte length and that many UTF-8 bytes.
//!
//! Header:
//!
//! | bytes | what |
//! |---|---|
//! | 0..8 | magic, ASCII `MBRECORD` |
//! | 8..12 | [`VERSION`] (1) |
//! | 12..16 | `H`, the header's length in bytes, this field included (at most 1 MiB) |
//! | 16..20 | sample period `N` (one fault in `N` recorded) |
//! | 20..24 | the guest's ring capacity in records |
//! | 24..28 | bytes per record (48, [`mobius_shared::record::RECORD_LEN`]) |
//! | 28..32 | `P`, the number of programs (at most 64) |
//! | 32..40 | the guest's TSC frequency in kHz, from its first record frame (0: unknown; no frame came) |
//! | 40.. | the title (the workload words or PROGRAM and its arguments), a string |
//! | | `P` programs, each: its guest path (string; `[kernel]` for the guest kernel), its host path (string, absolute; empty for the kernel bundled in `mobius`), its size (u64), FNV-1a 64 hash of its bytes (u64), then its GNU build id (string of raw bytes, empty when it has none) |
//!
//! Records: from byte `H` on, 48 bytes each, exactly as the guest sent them
//! (the record layout of [`mobius_shared::record`]), in the order they
//! arrived.
//!
//! Trailer, the last `T` bytes of the file:
//!
//! | bytes | what |
//! |---|---|
//! | 0..8 | magic, ASCII `MBRCTAIL` |
//! | 8..16 | records in the file |
//! | 16..24 | records the guest dropped (its ring was full, or it had no console) |
//! | 24..32 | faults the guest saw while recording (recorded, sampled out or dropped) |
//! | 32..40 | record frames received |
//! | 40..48 | record frames the host refused (malformed, unknown version) or found missing (a gap in the sequence numbers) |
//! | 48..52 | flags: bit 0, the guest's final frame arrived (its counts are the run's) |
//! | 52..56 | the run's exit status (as `mobius` exits) |
//! | 56..60 | `Q`, processes named (at most 1024) |
//! | 60.. | `Q` processes, each: pid (u32), name (string: the path it was started as, as the guest's statistics carry it) |
//! | last 8 | `T`, the trailer's length, this field included |
//!
//! A reader checks the header, then the trailer from the end, then that the
//! records fill exactly the bytes between them: a file cut short (a
//! recording that was killed) has no trailer and is refused as truncated.
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use mobius_shared::record::{FaultRecord, RECORD_LEN};

use super::error::RecordFileError;

/// The header's magic.
pub const MAGIC: &[u8; 8] = b"MBRECORD";
/// The trailer's magic.
pub const TRAILER_MAGIC: &[u8; 8] = b"MBRCTAIL";
/// The file format's version. Bump on any change.
pub const VERSION: u32 = 1;
const MAX_HEADER: u32 = 1 << 20;
const MAX_PROGRAMS: u32 = 64;
const MAX_PROCESSES: u32 = 1024;
const MAX_STRING: u32 = 64 * 1024;
/// The trailer's fixed part, before the processes.
const TRAILER_FIXED: u64 = 60;

/// A program whose instruction pointers the report resolves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Program {
    /// Where the guest saw it (`/bin/touch`); `[kernel]` for the kernel.
    pub guest_path: String,
    /// Where it is on the host (absolute); empty: the bundled kernel.
    pub host_path: String,
    pub size: u64,
    pub hash: u64,
    pub build_id: Vec<u8>,
}

/// The guest path naming the kernel among the programs.
pub const KERNEL: &str = "[kernel]";

/// Everything written before the run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    pub sample: u32,
    pub ring: u32,
    /// The guest's TSC frequency (0: unknown).
    pub tsc_khz: u64,
    pub title: String,
    pub programs: Vec<Program>,
}

/// Everything written after the run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Trailer {
    pub records: u64,
    pub dropped: u64,
    pub seen: u64,
    pub frames: u64,
    pub bad_frames: u64,
    pub final_frame: bool,
    pub status: i32,
    pub processes: Vec<(u32, String)>,
}

/// FNV-1a, 64 bits: the programs' fingerprint.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    let len = s.len().min(MAX_STRING as usize);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&s[..len]);
}

impl Header {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // length, below
        out.extend_from_slice(&self.sample.to_le_bytes());
        out.extend_from_slice(&self.ring.to_le_bytes());
        out.extend_from_slice(&(RECORD_LEN as u32).to_le_bytes());
        let programs = &self.programs[..self.programs.len().min(MAX_PROGRAMS as usize)];
        out.extend_from_slice(&(programs.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.tsc_khz.to_le_bytes());
        put_str(&mut out, self.title.as_bytes());
        for p in programs {
            put_str(&mut out, p.guest_path.as_bytes());
            put_str(&mut out, p.host_path.as_bytes());
            out.extend_from_slice(&p.size.to_le_bytes());
            out.extend_from_slice(&p.hash.to_le_bytes());
            put_str(&mut out, &p.build_id);
        }
        let len = out.len() as u32;
        out[12..16].copy_from_slice(&len.to_le_bytes());
        out
    }

    /// Parse a whole header (exactly its `H` bytes).
    pub fn parse(bytes: &[u8]) -> Result<Header, RecordFileError> {
        let mut c = Cursor::new(bytes);
        let _magic = c.take(8)?;
        let _version = c.u32()?;
        let _len = c.u32()?;
        let sample = c.u32()?;
        let ring = c.u32()?;
        if c.u32()? as usize != RECORD_LEN || sample == 0 {
            return Err(RecordFileError::Corrupt(
                "header: bad record size or sample",
            ));
        }
        let n = c.u32()?;
        if n > MAX_PROGRAMS {
            return Err(RecordFileError::Corrupt("header: too many programs"));
        }
        let tsc_khz = c.u64()?;
        let title = c.string()?;
        let programs = (0..n)
            .map(|_| {
                Ok(Program {
                    guest_path: c.string()?,
                    host_path: c.string()?,
                    size: c.u64()?,
                    hash: c.u64()?,
                    build_id: c.bytes()?.to_vec(),
                })
            })
            .collect::<Result<_, RecordFileError>>()?;
        if !c.rest().is_empty() {
            return Err(RecordFileError::Corrupt("header: bytes after the programs"));
        }
        Ok(Header {
            sample,
            ring,
            tsc_khz,
            title,
            programs,
        })
    }
}

impl Trailer {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(TRAILER_MAGIC);
        for v in [
            self.records,
            self.dropped,
            self.seen,
            self.frames,
            self.bad_frames,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&u32::from(self.final_frame).to_le_bytes());
        out.extend_from_slice(&self.status.to_le_bytes());
        let procs = &self.processes[..self.processes.len().min(MAX_PROCESSES as usize)];
        out.extend_from_slice(&(procs.len() as u32).to_le_bytes());
        for (pid, name) in procs {
            out.extend_from_slice(&pid.to_le_bytes());
            put_str(&mut out, name.as_bytes());
        }
        let len = out.len() as u64 + 8;
        out.extend_from_slice(&len.to_le_bytes());
        out
    }

    /// Parse a whole trailer (its `T` bytes, the length field included).
    pub fn parse(bytes: &[u8]) -> Result<Trailer, RecordFileError> {
        let mut c = Cursor::new(bytes);
        if c.take(8)? != TRAILER_MAGIC {
            return Err(RecordFileError::Truncated);
        }
        let mut t = Trailer {
            records: c.u64()?,
            dropped: c.u64()?,
            seen: c.u64()?,
            frames: c.u64()?,
            bad_frames: c.u64()?,
            final_frame: c.u32()? & 1 != 0,
            status: c.u32()? as i32,
            processes: Vec::new(),
        };
        let n = c.u32()?;
        if n > MAX_PROCESSES {
            return Err(RecordFileError::Corrupt("trailer: too many processes"));
        }
        for _ in 0..n {
            let pid = c.u32()?;
            t.processes.push((pid, c.string()?));
        }
        if c.rest().len() != 8 {
            return Err(RecordFileError::Corrupt("trailer: length does not match"));
        }
        Ok(t)
    }
}

/// Bounds-checked reads from a byte slice.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8]) -> Self {
        Cursor(b)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordFileError> {
        if self.0.len() < n {
            return Err(RecordFileError::Corrupt("a field runs past its section"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, RecordFileError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, RecordFileError> {
        let mut w = [0u8; 8];
        w.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(w))
    }
    fn bytes(&mut self) -> Result<&'a [u8], RecordFileError> {
        let n = self.u32()?;
        if n > MAX_STRING {
            return Err(RecordFileError::Corrupt("a string longer than 64 KiB"));
        }
        self.take(n as usize)
    }
    fn string(&mut self) -> Result<String, RecordFileError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| RecordFileError::Corrupt("a string is not UTF-8"))
    }
    fn rest(&self) -> &'a [u8] {
        self.0
    }
}

/// Streams a data file: the header with the first records (or at the
/// end), records as they come, the trailer at the end. Write errors are
/// kept (the first one) and reported by [`Writer::finish`]; nothing more is
/// written after one.
pub struct Writer<W: Write> {
    out: Option<BufWriter<W>>,
    /// The header, until it is written.
    header: Option<Header>,
    error: Option<std::io::Error>,
    records: u64,
    bytes: u64,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W, header: &Header) -> Self {
        Writer {
            out: Some(BufWriter::with_capacity(64 * 1024, out)),
            header: Some(header.clone()),
            error: None,
            records: 0,
            bytes: 0,
        }
    }

    /// The guest's TSC frequency, for the header if it is not written yet.
    pub fn set_tsc_khz(&mut self, khz: u64) {
        if let Some(h) = self.header.as_mut() {
            h.tsc_khz = khz;
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        let Some(out) = self.out.as_mut() else { return };
        match out.write_all(bytes) {
            Ok(()) => self.bytes += bytes.len() as u64,
            Err(e) => {
                self.error = Some(e);
                self.out = None;
            }
        }
    }

    fn write_header(&mut self) {
        if let Some(h) = self.header.take() {
            self.write(&h.to_bytes());
        }
    }

    /// Append records (whole ones, [`RECORD_LEN`] bytes each).
    pub fn records(&mut self, bytes: &[u8]) {
        self.write_header();
        let whole = bytes.len() - bytes.len() % RECORD_LEN;
        let before = self.bytes;
        self.write(&bytes[..whole]);
        if self.bytes > before {
            self.records += (whole / RECORD_LEN) as u64;
        }
    }

    /// Records written so far.
    pub fn count(&self) -> u64 {
        self.records
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Write the trailer (its record count is the writer's) and flush;
    /// the output and the file's whole length.
    pub fn finish(mut self, trailer: &Trailer) -> Result<(W, u64), std::io::Error> {
        self.write_header();
        let t = Trailer {
            records: self.records,
            ..trailer.clone()
        };
        self.write(&t.to_bytes());
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let out = self
            .out
            .take()
            .ok_or_else(|| std::io::Error::other("no output"))?;
        Ok((out.into_inner().map_err(|e| e.into_error())?, self.bytes))
    }
}

/// A data file opened for reading: header and trailer checked, records
/// read in order by [`DataFile::records`].
pub struct DataFile {
    pub path: PathBuf,
    pub header: Header,
    pub trailer: Trailer,
    records_at: u64,
}

impl DataFile {
    pub fn open(path: &Path) -> Result<DataFile, RecordFileError> {
        let io = |e: std::io::Error| RecordFileError::Open {
            path: path.to_path_buf(),
            source: e,
        };
        let mut f = File::open(path).map_err(io)?;
        let len = f.metadata().map_err(io)?.len();
        let mut head = [0u8; 16];
        if len < 16 {
            return Err(RecordFileError::NotRecord);
        }
        f.read_exact(&mut head).map_err(io)?;
        if &head[..8] != MAGIC {
            return Err(RecordFileError::NotRecord);
        }
        let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if version != VERSION {
            return Err(RecordFileError::Version(version));
        }
        let h = u32::from_le_bytes([head[12], head[13], head[14], head[15]]);
        if h > MAX_HEADER || u64::from(h) < 32 || u64::from(h) > len {
            return Err(RecordFileError::Truncated);
        }
        let mut hbytes = vec![0u8; h as usize];
        f.seek(SeekFrom::Start(0)).map_err(io)?;
        f.read_exact(&mut hbytes).map_err(io)?;
        let header = Header::parse(&hbytes)?;
        let rest = len - u64::from(h);
        if rest < TRAILER_FIXED + 8 {
            return Err(RecordFileError::Truncated);
        }
        let mut last = [0u8; 8];
        f.seek(SeekFrom::Start(len - 8)).map_err(io)?;
        f.read_exact(&mut last).map_err(io)?;
        let t = u64::from_le_bytes(last);
        if t < TRAILER_FIXED + 8 || t > rest || t > u64::from(MAX_HEADER) {
            return Err(RecordFileError::Truncated);
        }
        let mut tbytes = vec![0u8; t as usize];
        f.seek(SeekFrom::Start(len - t)).map_err(io)?;
        f.read_exact(&mut tbytes).map_err(io)?;
        let trailer = Trailer::parse(&tbytes)?;
        let body = rest - t;
        if body % RECORD_LEN as u64 != 0 || body / RECORD_LEN as u64 != trailer.records {
            return Err(RecordFileError::Corrupt(
                "the records between header and trailer do not match the trailer's count",
            ));
        }
        Ok(DataFile {
            path: path.to_path_buf(),
            header,
            trailer,
            records_at: u64::from(h),
        })
    }

    /// Every record, in file order; a record that does not check out is
    /// an error.
    pub fn records(&self) -> Result<RecordIter, RecordFileError> {
        let io = |e: std::io::Error| RecordFileError::Open {
            path: self.path.clone(),
            source: e,
        };
        let mut f = File::open(&self.path).map_err(io)?;
        f.seek(SeekFrom::Start(self.records_at)).map_err(io)?;
        Ok(RecordIter {
            input: BufReader::with_capacity(64 * 1024, f),
            left: self.trailer.records,
        })
    }
}

/// The records of a [`DataFile`].
pub struct RecordIter {
    input: BufReader<File>,
    left: u64,
}

impl Iterator for RecordIter {
    type Item = Result<FaultRecord, RecordFileError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let mut b = [0u8; RECORD_LEN];
        Some(match self.input.read_exact(&mut b) {
            Ok(()) => FaultRecord::read(&b).map_err(|_| RecordFileError::Corrupt("a bad record")),
            Err(_) => Err(RecordFileError::Truncated),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mobius_shared::record::FaultRecord;

    fn header() -> Header {
        Header {
            sample: 16,
            ring: 4096,
            tsc_khz: 2_000_000,
            title: "touch mmap 100".into(),
            programs: vec![Program {
                guest_path: "/bin/touch".into(),
                host_path: "/tmp/touch".into(),
                size: 1234,
                hash: 0xdead_beef,
                build_id: vec![1, 2, 3],
            }],
        }
    }

    fn trailer() -> Trailer {
        Trailer {
            records: 0,
            dropped: 7,
            seen: 99,
            frames: 3,
            bad_frames: 1,
            final_frame: true,
            status: 139,
            processes: vec![(1, "/bin/touch".into()), (2, "/bin/sh".into())],
        }
    }

    fn record(i: u64) -> FaultRecord {
        FaultRecord {
            tsc: i,
            addr: 0x1000 * i,
            pid: 1,
            area_type: 1,
            ..FaultRecord::default()
        }
    }

    fn file_with(n: u64) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("mobius.data");
        let f = File::create(&path).expect("create");
        let mut w = Writer::new(f, &header());
        for i in 0..n {
            w.records(&record(i).to_bytes());
        }
        w.finish(&trailer()).expect("finish");
        (dir, path)
    }

    #[test]
    fn round_trip() {
        let (_dir, path) = file_with(5);
        let d = DataFile::open(&path).expect("opens");
        assert_eq!(d.header, header());
        assert_eq!(
            d.trailer,
            Trailer {
                records: 5,
                ..trailer()
            }
        );
        let back: Vec<FaultRecord> = d.records().expect("iter").map(|r| r.expect("ok")).collect();
        assert_eq!(back, (0..5).map(record).collect::<Vec<_>>());
        assert_eq!(&std::fs::read(&path).expect("read")[..8], b"MBRECORD");
    }

    #[test]
    fn bad_files_are_clean_errors() {
        let (dir, path) = file_with(3);
        let good = std::fs::read(&path).expect("read");
        let bad = dir.path().join("bad");
        let try_bytes = |b: &[u8]| {
            std::fs::write(&bad, b).expect("write");
            DataFile::open(&bad).and_then(|d| d.records()?.collect::<Result<Vec<_>, _>>())
        };
        // Every truncation is refused, none panics.
        for cut in 0..good.len() {
            let e = try_bytes(&good[..cut]).expect_err("truncated");
            assert!(
                matches!(
                    e,
                    RecordFileError::Truncated
                        | RecordFileError::NotRecord
                        | RecordFileError::Corrupt(_)
                ),
                "{cut}: {e}"
            );
        }
        assert!(matches!(
            try_bytes(b"hello world, not a record file"),
            Err(RecordFileError::NotRecord)
        ));
        let mut v = good.clone();
        v[8] = 9;
        assert!(matches!(try_bytes(&v), Err(RecordFileError::Version(9))));
        // Every single flipped byte: an answer, never a panic.
        for at in 0..good.len() {
            let mut v = good.clone();
            v[at] ^= 0x5a;
            let _ = try_bytes(&v);
        }
        let missing = DataFile::open(&dir.path().join("nope")).err();
        assert!(matches!(missing, Some(RecordFileError::Open { .. })));
    }
}
