//! Per-process statistics: the process block of a statistics frame
//! (wire version 4, flag [`crate::stats::wire::FLAG_PROCESSES`]).
//!
//! The block follows the counter block (and the histogram block, when
//! present). Little-endian, fixed offsets:
//!
//! | bytes | type | what |
//! |---|---|---|
//! | 0..4 | u32 | `R`, process records that follow (at most [`MAX_RECORDS`]) |
//! | 4..8 | u32 | `E`, unimplemented system-call numbers that follow (at most [`MAX_ENOSYS`]) |
//! | 8..16 | u64 | system calls made by every process of the run |
//! | 16..24 | u64 | of those, calls the kernel does not implement (answered `ENOSYS`) |
//! | 24..32 | | zero |
//! | 32.. | E × 16 | per number: u32 system-call number, u32 zero, u64 how many times |
//! | then | R × 64 | per process: u32 pid, u32 parent pid, u32 status (`u32::MAX` while it runs; else as a shell shows it: the exit code, or 128 + signal), u32 zero, u64 system calls, u64 of those `ENOSYS`, u64 page faults it took in ring 3, u64 CPU time in TSC cycles, 16 bytes of its program's path (the last 16 bytes when longer; NUL-padded) |
//!
//! So a block is `32 + 16 E + 64 R` bytes. Runs with more than
//! [`MAX_RECORDS`] processes keep the first `MAX_RECORDS - 1` and sum the
//! rest into a last record with pid 0 named `(others)`; more than
//! [`MAX_ENOSYS`] distinct unimplemented numbers keep the first ones seen
//! (the totals still count every call).

use serde::{Deserialize, Serialize};

/// Most process records in a block.
pub const MAX_RECORDS: usize = 32;
/// Most distinct `ENOSYS` numbers in a block.
pub const MAX_ENOSYS: usize = 16;
/// Bytes of the block's fixed head.
pub const HEAD_LEN: usize = 32;
/// Bytes of one `ENOSYS` entry.
pub const ENOSYS_LEN: usize = 16;
/// Bytes of one process record.
pub const RECORD_LEN: usize = 64;
/// Largest block.
pub const MAX_BLOCK_LEN: usize = HEAD_LEN + MAX_ENOSYS * ENOSYS_LEN + MAX_RECORDS * RECORD_LEN;
/// `status` of a process that has not ended.
pub const RUNNING: u32 = u32::MAX;
/// Bytes of a record's name.
pub const NAME_LEN: usize = 16;

/// One unimplemented system-call number and how often it was called.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnosysCount {
    pub nr: u32,
    pub count: u64,
}

/// One process's statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    pub pid: u32,
    pub parent: u32,
    /// [`RUNNING`], or the status a shell shows.
    pub status: u32,
    pub syscalls: u64,
    pub enosys: u64,
    /// Page faults taken in ring 3.
    pub faults: u64,
    pub cpu_cycles: u64,
    pub name: [u8; NAME_LEN],
}

impl ProcessRecord {
    /// The name as text (up to the first NUL; `?` for bytes that are not
    /// UTF-8).
    pub fn name(&self) -> &str {
        let end = self.name.iter().position(|b| *b == 0).unwrap_or(NAME_LEN);
        core::str::from_utf8(&self.name[..end]).unwrap_or("?")
    }

    /// Set the name from a path: its last [`NAME_LEN`] bytes, cut at a
    /// character boundary.
    pub fn set_name(&mut self, path: &str) {
        let mut start = path.len().saturating_sub(NAME_LEN);
        while !path.is_char_boundary(start) {
            start += 1;
        }
        let tail = &path.as_bytes()[start..];
        self.name = [0; NAME_LEN];
        self.name[..tail.len()].copy_from_slice(tail);
    }

    /// Add `other`'s counts to this one (the `(others)` record).
    pub fn absorb(&mut self, other: &ProcessRecord) {
        self.syscalls = self.syscalls.saturating_add(other.syscalls);
        self.enosys = self.enosys.saturating_add(other.enosys);
        self.faults = self.faults.saturating_add(other.faults);
        self.cpu_cycles = self.cpu_cycles.saturating_add(other.cpu_cycles);
    }
}

/// The process block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessBlock {
    pub syscalls: u64,
    pub enosys: u64,
    pub n_enosys: u32,
    pub enosys_numbers: [EnosysCount; MAX_ENOSYS],
    pub n_records: u32,
    pub records: [ProcessRecord; MAX_RECORDS],
}

impl Default for ProcessBlock {
    fn default() -> Self {
        ProcessBlock {
            syscalls: 0,
            enosys: 0,
            n_enosys: 0,
            enosys_numbers: [EnosysCount::default(); MAX_ENOSYS],
            n_records: 0,
            records: [ProcessRecord::default(); MAX_RECORDS],
        }
    }
}

/// A process block that does not hold together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadBlock;

impl ProcessBlock {
    /// The records in use.
    pub fn records(&self) -> &[ProcessRecord] {
        &self.records[..(self.n_records as usize).min(MAX_RECORDS)]
    }

    /// The `ENOSYS` numbers in use.
    pub fn enosys_numbers(&self) -> &[EnosysCount] {
        &self.enosys_numbers[..(self.n_enosys as usize).min(MAX_ENOSYS)]
    }

    /// Add a record, folding it into `(others)` when the block is full.
    pub fn push(&mut self, r: ProcessRecord) {
        let n = self.n_records as usize;
        if n < MAX_RECORDS - 1 {
            self.records[n] = r;
            self.n_records += 1;
            return;
        }
        if n == MAX_RECORDS - 1 {
            let mut others = ProcessRecord {
                status: RUNNING,
                ..ProcessRecord::default()
            };
            others.set_name("(others)");
            self.records[n] = others;
            self.n_records += 1;
        }
        self.records[MAX_RECORDS - 1].absorb(&r);
    }

    /// Bytes this block takes on the wire.
    pub fn wire_len(&self) -> usize {
        HEAD_LEN + ENOSYS_LEN * self.enosys_numbers().len() + RECORD_LEN * self.records().len()
    }

    /// Write the block into `out` (at least [`Self::wire_len`] bytes);
    /// returns the bytes written.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, BadBlock> {
        let len = self.wire_len();
        let out = out.get_mut(..len).ok_or(BadBlock)?;
        out.fill(0);
        let put = |out: &mut [u8], at: usize, v: u64, n: usize| {
            out[at..at + n].copy_from_slice(&v.to_le_bytes()[..n]);
        };
        put(out, 0, self.records().len() as u64, 4);
        put(out, 4, self.enosys_numbers().len() as u64, 4);
        put(out, 8, self.syscalls, 8);
        put(out, 16, self.enosys, 8);
        let mut at = HEAD_LEN;
        for e in self.enosys_numbers() {
            put(out, at, u64::from(e.nr), 4);
            put(out, at + 8, e.count, 8);
            at += ENOSYS_LEN;
        }
        for r in self.records() {
            put(out, at, u64::from(r.pid), 4);
            put(out, at + 4, u64::from(r.parent), 4);
            put(out, at + 8, u64::from(r.status), 4);
            put(out, at + 16, r.syscalls, 8);
            put(out, at + 24, r.enosys, 8);
            put(out, at + 32, r.faults, 8);
            put(out, at + 40, r.cpu_cycles, 8);
            out[at + 48..at + 64].copy_from_slice(&r.name);
            at += RECORD_LEN;
        }
        Ok(len)
    }

    /// Read a block that is exactly `bytes` (the rest of a frame).
    pub fn read(bytes: &[u8]) -> Result<ProcessBlock, BadBlock> {
        let u = |at: usize, n: usize| -> Result<u64, BadBlock> {
            let b = bytes.get(at..at + n).ok_or(BadBlock)?;
            let mut w = [0u8; 8];
            w[..n].copy_from_slice(b);
            Ok(u64::from_le_bytes(w))
        };
        let n_records = u(0, 4)? as usize;
        let n_enosys = u(4, 4)? as usize;
        if n_records > MAX_RECORDS || n_enosys > MAX_ENOSYS || u(24, 8)? != 0 {
            return Err(BadBlock);
        }
        if bytes.len() != HEAD_LEN + ENOSYS_LEN * n_enosys + RECORD_LEN * n_records {
            return Err(BadBlock);
        }
        let mut b = ProcessBlock {
            syscalls: u(8, 8)?,
            enosys: u(16, 8)?,
            n_enosys: n_enosys as u32,
            n_records: n_records as u32,
            ..ProcessBlock::default()
        };
        let mut at = HEAD_LEN;
        for e in b.enosys_numbers.iter_mut().take(n_enosys) {
            e.nr = u(at, 4)? as u32;
            e.count = u(at + 8, 8)?;
            at += ENOSYS_LEN;
        }
        for r in b.records.iter_mut().take(n_records) {
            r.pid = u(at, 4)? as u32;
            r.parent = u(at + 4, 4)? as u32;
            r.status = u(at + 8, 4)? as u32;
            r.syscalls = u(at + 16, 8)?;
            r.enosys = u(at + 24, 8)?;
            r.faults = u(at + 32, 8)?;
            r.cpu_cycles = u(at + 40, 8)?;
            r.name
                .copy_from_slice(bytes.get(at + 48..at + 64).ok_or(BadBlock)?);
            at += RECORD_LEN;
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pid: u32) -> ProcessRecord {
        let mut r = ProcessRecord {
            pid,
            parent: pid.saturating_sub(1),
            status: 0,
            syscalls: 10 * u64::from(pid),
            enosys: 1,
            faults: 40,
            cpu_cycles: u64::MAX,
            name: [0; NAME_LEN],
        };
        r.set_name("/a/very/long/path/to/bin/hello");
        r
    }

    #[test]
    fn a_block_round_trips() {
        let mut b = ProcessBlock {
            syscalls: 99,
            enosys: 3,
            n_enosys: 1,
            ..ProcessBlock::default()
        };
        b.enosys_numbers[0] = EnosysCount { nr: 435, count: 3 };
        b.push(record(1));
        b.push(record(2));
        let mut buf = [0u8; MAX_BLOCK_LEN];
        let n = b.write(&mut buf).unwrap();
        assert_eq!(n, HEAD_LEN + ENOSYS_LEN + 2 * RECORD_LEN);
        let back = ProcessBlock::read(&buf[..n]).unwrap();
        assert_eq!(back, b);
        let path = "/a/very/long/path/to/bin/hello";
        assert_eq!(back.records()[0].name(), &path[path.len() - NAME_LEN..]);
    }

    #[test]
    fn names_keep_the_tail_of_the_path() {
        let mut r = ProcessRecord::default();
        r.set_name("/bin/hello");
        assert_eq!(r.name(), "/bin/hello");
        r.set_name("/usr/local/bin/program");
        assert_eq!(r.name(), "ocal/bin/program");
    }

    #[test]
    fn many_processes_fold_into_others() {
        let mut b = ProcessBlock::default();
        for pid in 1..=100 {
            b.push(record(pid));
        }
        assert_eq!(b.records().len(), MAX_RECORDS);
        let others = b.records()[MAX_RECORDS - 1];
        assert_eq!(others.name(), "(others)");
        let folded: u64 = (MAX_RECORDS as u64..=100).map(|p| 10 * p).sum();
        assert_eq!(others.syscalls, folded);
        assert_eq!(others.cpu_cycles, u64::MAX);
    }

    #[test]
    fn bad_blocks_are_refused() {
        let mut buf = [0u8; MAX_BLOCK_LEN];
        let b = ProcessBlock::default();
        let n = b.write(&mut buf).unwrap();
        assert!(ProcessBlock::read(&buf[..n]).is_ok());
        assert_eq!(ProcessBlock::read(&buf[..n + 1]), Err(BadBlock));
        buf[0] = 200;
        assert_eq!(ProcessBlock::read(&buf[..n]), Err(BadBlock));
        buf[0] = 1;
        assert_eq!(ProcessBlock::read(&buf[..n]), Err(BadBlock));
        assert_eq!(ProcessBlock::read(&[]), Err(BadBlock));
    }
}
