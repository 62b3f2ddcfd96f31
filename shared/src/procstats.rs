//! Per-process statistics: the process block of a statistics frame
//! (wire versions 4 and 5, flag [`crate::stats::wire::FLAG_PROCESSES`]).
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
//! | then | R × L | per process: u32 pid, u32 parent pid, u32 status (`u32::MAX` while it runs; else as a shell shows it: the exit code, or 128 + signal), u32 zero, u64 system calls, u64 of those `ENOSYS`, u64 page faults it took in ring 3, u64 CPU time in TSC cycles, 16 bytes of its program's path (the last 16 bytes when longer; NUL-padded); version 5 only: 64 bytes of its command line |
//!
//! A record is `L` = [`RECORD_LEN`] (128) bytes in version 5 and
//! [`RECORD_LEN_V4`] (64) in version 4, which has no command line. The
//! command line (bytes 64..128 of a version-5 record) is the program's
//! arguments as `execve` gave them, `argv[0]` first, joined by single
//! spaces, UTF-8, NUL-padded. When it does not fit, its first 61 bytes
//! (cut at a character boundary) are followed by `...`.
//!
//! So a block is `32 + 16 E + L R` bytes. Runs with more than
//! [`MAX_RECORDS`] processes keep the first `MAX_RECORDS - 1` and sum the
//! rest into a last record with pid 0 named `(others)`; more than
//! [`MAX_ENOSYS`] distinct unimplemented numbers keep the first ones seen
//! (the totals still count every call).

/// Most process records in a block.
pub const MAX_RECORDS: usize = 32;
/// Most distinct `ENOSYS` numbers in a block.
pub const MAX_ENOSYS: usize = 16;
/// Bytes of the block's fixed head.
pub const HEAD_LEN: usize = 32;
/// Bytes of one `ENOSYS` entry.
pub const ENOSYS_LEN: usize = 16;
/// Bytes of one process record (wire version 5).
pub const RECORD_LEN: usize = 128;
/// Bytes of one process record in wire version 4 (no command line).
pub const RECORD_LEN_V4: usize = 64;
/// Largest block.
pub const MAX_BLOCK_LEN: usize = HEAD_LEN + MAX_ENOSYS * ENOSYS_LEN + MAX_RECORDS * RECORD_LEN;
/// `status` of a process that has not ended.
pub const RUNNING: u32 = u32::MAX;
/// Bytes of a record's name.
pub const NAME_LEN: usize = 16;
/// Bytes of a record's command line.
pub const COMMAND_LEN: usize = 64;
/// What ends a command line that was cut.
const CUT_MARK: &[u8] = b"...";

/// One unimplemented system-call number and how often it was called.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnosysCount {
    pub nr: u32,
    pub count: u64,
}

/// One process's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// The command line (see the module doc); all zero in version 4.
    pub command: [u8; COMMAND_LEN],
}

impl Default for ProcessRecord {
    fn default() -> Self {
        ProcessRecord::EMPTY
    }
}

impl ProcessRecord {
    /// A record with every field zero.
    pub const EMPTY: ProcessRecord = ProcessRecord {
        pid: 0,
        parent: 0,
        status: 0,
        syscalls: 0,
        enosys: 0,
        faults: 0,
        cpu_cycles: 0,
        name: [0; NAME_LEN],
        command: [0; COMMAND_LEN],
    };

    /// The command line, shown with `?` for bytes that are not UTF-8
    /// (empty when the frame had none).
    pub fn command(&self) -> CommandText<'_> {
        let end = self
            .command
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(COMMAND_LEN);
        CommandText(&self.command[..end])
    }

    /// Set the command line from `/proc/PID/cmdline` bytes: arguments each
    /// ended by a NUL, joined here by spaces; cut with `...` when longer
    /// than [`COMMAND_LEN`]. A byte copy: the guest fills this in ring 0,
    /// where every instruction costs, and the host checks the UTF-8.
    pub fn set_command(&mut self, cmdline: &[u8]) {
        self.command = [0; COMMAND_LEN];
        let body = cmdline.strip_suffix(&[0]).unwrap_or(cmdline);
        let (take, cut) = if body.len() > COMMAND_LEN {
            let mut end = COMMAND_LEN - CUT_MARK.len();
            // Back to a character boundary: never end inside a UTF-8 sequence.
            while end > 0 && body[end] & 0xc0 == 0x80 {
                end -= 1;
            }
            (end, true)
        } else {
            (body.len(), false)
        };
        for (out, b) in self.command.iter_mut().zip(&body[..take]) {
            *out = if *b == 0 { b' ' } else { *b };
        }
        if cut {
            self.command[take..take + CUT_MARK.len()].copy_from_slice(CUT_MARK);
        }
    }

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

/// A record's command line for display: UTF-8, with `?` for each byte
/// that is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandText<'a>(pub &'a [u8]);

impl core::fmt::Display for CommandText<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            for _ in chunk.invalid() {
                f.write_str("?")?;
            }
        }
        Ok(())
    }
}

/// The process block.
#[derive(Debug, Clone, PartialEq, Eq)]
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
            records: [ProcessRecord::EMPTY; MAX_RECORDS],
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
                ..ProcessRecord::EMPTY
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
            out[at + 64..at + 128].copy_from_slice(&r.command);
            at += RECORD_LEN;
        }
        Ok(len)
    }

    /// Read a block of wire version `version` (4 or 5) that is exactly
    /// `bytes` (the rest of a frame).
    pub fn read(bytes: &[u8], version: u16) -> Result<ProcessBlock, BadBlock> {
        let record_len = match version {
            4 => RECORD_LEN_V4,
            5 => RECORD_LEN,
            _ => return Err(BadBlock),
        };
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
        if bytes.len() != HEAD_LEN + ENOSYS_LEN * n_enosys + record_len * n_records {
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
            if record_len == RECORD_LEN {
                r.command
                    .copy_from_slice(bytes.get(at + 64..at + 128).ok_or(BadBlock)?);
            }
            at += record_len;
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    fn record(pid: u32) -> ProcessRecord {
        let mut r = ProcessRecord {
            pid,
            parent: pid.saturating_sub(1),
            status: 0,
            syscalls: 10 * u64::from(pid),
            enosys: 1,
            faults: 40,
            cpu_cycles: u64::MAX,
            ..ProcessRecord::EMPTY
        };
        r.set_name("/a/very/long/path/to/bin/hello");
        r.set_command(b"hello\0-n\0world\0");
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
        let back = ProcessBlock::read(&buf[..n], 5).unwrap();
        assert_eq!(back, b);
        let path = "/a/very/long/path/to/bin/hello";
        assert_eq!(back.records()[0].name(), &path[path.len() - NAME_LEN..]);
        assert_eq!(back.records()[0].command().to_string(), "hello -n world");
    }

    #[test]
    fn version_4_records_have_no_command_line() {
        let mut b = ProcessBlock::default();
        b.push(record(7));
        let mut v5 = [0u8; MAX_BLOCK_LEN];
        let n = b.write(&mut v5).unwrap();
        // The same block as version 4 wrote it: records cut to 64 bytes.
        let mut v4 = v5[..HEAD_LEN].to_vec();
        v4.extend_from_slice(&v5[HEAD_LEN..HEAD_LEN + RECORD_LEN_V4]);
        assert_eq!(n, HEAD_LEN + RECORD_LEN);
        let back = ProcessBlock::read(&v4, 4).unwrap();
        assert_eq!(back.records()[0].pid, 7);
        assert_eq!(back.records()[0].name(), "ath/to/bin/hello");
        assert_eq!(back.records()[0].command().to_string(), "");
        assert_eq!(ProcessBlock::read(&v4, 5), Err(BadBlock));
        assert_eq!(ProcessBlock::read(&v5[..n], 4), Err(BadBlock));
        assert_eq!(ProcessBlock::read(&v5[..n], 3), Err(BadBlock));
    }

    #[test]
    fn long_command_lines_are_cut_with_a_mark() {
        let mut r = ProcessRecord::default();
        let long: std::vec::Vec<u8> = (0..40).flat_map(|_| *b"ab\0").collect();
        r.set_command(&long);
        let text = r.command().to_string();
        assert_eq!(text.len(), COMMAND_LEN, "{text}");
        assert!(text.starts_with("ab ab ab"), "{text}");
        assert!(text.ends_with("a..."), "{text}");
        // A multi-byte character is never split.
        r.set_command("é".repeat(40).as_bytes());
        let text = r.command().to_string();
        assert_eq!(text, std::format!("{}...", "é".repeat(30)));
        // Bytes that are not UTF-8 show as `?`; no trailing NUL is needed.
        r.set_command(b"a\xffb\0c");
        assert_eq!(r.command().to_string(), "a?b c");
        r.set_command(b"");
        assert_eq!(r.command().to_string(), "");
        // Exactly full: no mark.
        r.set_command(&[b'x'; COMMAND_LEN]);
        assert_eq!(r.command().to_string(), "x".repeat(COMMAND_LEN));
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
        assert!(ProcessBlock::read(&buf[..n], 5).is_ok());
        assert_eq!(ProcessBlock::read(&buf[..n + 1], 5), Err(BadBlock));
        buf[0] = 200;
        assert_eq!(ProcessBlock::read(&buf[..n], 5), Err(BadBlock));
        buf[0] = 1;
        assert_eq!(ProcessBlock::read(&buf[..n], 5), Err(BadBlock));
        assert_eq!(ProcessBlock::read(&[], 5), Err(BadBlock));
    }
}
