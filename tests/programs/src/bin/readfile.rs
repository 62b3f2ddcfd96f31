//! `readfile PATH...`: for each file: raw openat, fstat, read in 4 KiB chunks
//! to the end, then checks lseek (SEEK_CUR = size, SEEK_END = size, SEEK_SET)
//! and pread64 at the middle against what read returned. Prints
//! `PATH: SIZE bytes, sum SUM` (SUM: wrapping u32 sum of the bytes, decimal).
//!
//! `readfile --list DIR`: lists DIR with raw getdents64, one name a line,
//! sorted bytewise, without `.` and `..`.
//!
//! `readfile --mmap PATH`: maps PATH (private, read-only) and sums its bytes
//! through the mapping: `PATH: SIZE bytes mapped, sum SUM`. A page the
//! kernel cannot read in ends the program with SIGBUS.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use mobius_test_programs::die;
use mobius_test_programs::sys::*;

const PROG: &str = "readfile";
const CHUNK: usize = 4096;

fn read_file(path: &[u8]) -> Result<(usize, u32), String> {
    let fd = open(path, O_RDONLY | O_CLOEXEC);
    if is_err(fd) {
        return Err(format!("openat = {fd}"));
    }
    let r = check_file(fd);
    let c = close(fd);
    let (size, sum) = r?;
    if c != 0 {
        return Err(format!("close = {c}"));
    }
    Ok((size, sum))
}

/// Sum of PATH's bytes read through a private read-only mapping.
fn map_file(path: &[u8]) -> Result<(usize, u32), String> {
    let fd = open(path, O_RDONLY | O_CLOEXEC);
    if is_err(fd) {
        return Err(format!("openat = {fd}"));
    }
    let mut st = Stat::default();
    let r = fstat(fd, &mut st);
    if r != 0 {
        return Err(format!("fstat = {r}"));
    }
    let size = st.st_size as usize;
    if size == 0 {
        return Ok((0, 0));
    }
    // SAFETY: a fresh mapping chosen by the kernel touches no existing memory.
    let at = unsafe { syscall6(SYS_MMAP, 0, size, PROT_READ, MAP_PRIVATE, fd as usize, 0) };
    close(fd);
    if is_err(at) {
        return Err(format!("mmap = {at}"));
    }
    // SAFETY: `size` readable bytes were just mapped at `at`.
    let bytes = unsafe { std::slice::from_raw_parts(at as *const u8, size) };
    let sum = bytes
        .iter()
        .fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
    Ok((size, sum))
}

fn check_file(fd: isize) -> Result<(usize, u32), String> {
    let mut st = Stat::default();
    let r = fstat(fd, &mut st);
    if r != 0 {
        return Err(format!("fstat = {r}"));
    }
    let mut data = Vec::new();
    let mut chunk = vec![0u8; CHUNK];
    loop {
        // SAFETY: `chunk` is CHUNK writable bytes.
        let n = unsafe { syscall3(SYS_READ, fd as usize, chunk.as_mut_ptr() as usize, CHUNK) };
        if is_err(n) {
            return Err(format!("read at offset {} = {n}", data.len()));
        }
        if n == 0 {
            break;
        }
        if n as usize > CHUNK {
            return Err(format!("read returned {n} > {CHUNK}"));
        }
        data.extend_from_slice(&chunk[..n as usize]);
    }
    let size = data.len();
    if st.st_size != size as i64 {
        return Err(format!("fstat size {} but read {size} bytes", st.st_size));
    }
    let seek = |off: i64, whence: usize| -> isize {
        // SAFETY: lseek on our own descriptor.
        unsafe { syscall3(SYS_LSEEK, fd as usize, off as usize, whence) }
    };
    let cur = seek(0, SEEK_CUR);
    if cur != size as isize {
        return Err(format!(
            "lseek(0, SEEK_CUR) = {cur} after reading {size} bytes"
        ));
    }
    let end = seek(0, SEEK_END);
    if end != size as isize {
        return Err(format!("lseek(0, SEEK_END) = {end}, size {size}"));
    }
    let start = seek(0, SEEK_SET);
    if start != 0 {
        return Err(format!("lseek(0, SEEK_SET) = {start}"));
    }
    // pread64 from the middle: as many bytes as are left (up to a chunk), and
    // the file offset stays where lseek put it.
    let mid = size / 2;
    let want = (size - mid).min(CHUNK);
    chunk.fill(0);
    // SAFETY: `chunk` is CHUNK writable bytes.
    let n = unsafe {
        syscall4(
            SYS_PREAD64,
            fd as usize,
            chunk.as_mut_ptr() as usize,
            CHUNK,
            mid,
        )
    };
    if n != want as isize {
        return Err(format!("pread64(offset {mid}) = {n}, expected {want}"));
    }
    if chunk[..want] != data[mid..mid + want] {
        return Err(format!(
            "pread64(offset {mid}) returned other bytes than read"
        ));
    }
    let cur = seek(0, SEEK_CUR);
    if cur != 0 {
        return Err(format!("pread64 moved the file offset to {cur}"));
    }
    // Reading past the end gives 0.
    // SAFETY: `chunk` is CHUNK writable bytes.
    let n = unsafe {
        syscall4(
            SYS_PREAD64,
            fd as usize,
            chunk.as_mut_ptr() as usize,
            CHUNK,
            size + 10,
        )
    };
    if n != 0 {
        return Err(format!("pread64 past the end = {n}"));
    }
    let sum = data.iter().fold(0u32, |s, &b| s.wrapping_add(u32::from(b)));
    Ok((size, sum))
}

fn list_dir(path: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if is_err(fd) {
        return Err(format!("openat(O_DIRECTORY) = {fd}"));
    }
    let mut names = Vec::new();
    let mut buf = vec![0u8; 4096];
    let result = loop {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe {
            syscall3(
                SYS_GETDENTS64,
                fd as usize,
                buf.as_mut_ptr() as usize,
                buf.len(),
            )
        };
        if is_err(n) {
            break Err(format!("getdents64 = {n}"));
        }
        if n == 0 {
            break Ok(());
        }
        // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
        let mut off = 0usize;
        let n = n as usize;
        let mut bad = None;
        while off < n {
            if off + 19 > n {
                bad = Some(format!("getdents64: truncated record at {off}"));
                break;
            }
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            if reclen < 20 || off + reclen > n {
                bad = Some(format!("getdents64: bad d_reclen {reclen} at {off}"));
                break;
            }
            let name = &buf[off + 19..off + reclen];
            let Some(len) = name.iter().position(|&b| b == 0) else {
                bad = Some(format!("getdents64: name without NUL at {off}"));
                break;
            };
            let name = &name[..len];
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
            off += reclen;
        }
        if let Some(e) = bad {
            break Err(e);
        }
    };
    close(fd);
    result?;
    names.sort();
    Ok(names)
}

fn main() {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if args.is_empty() {
        die(PROG, "usage: readfile PATH... | readfile --list DIR");
    }
    let mut out = std::io::stdout().lock();
    if args[0].as_bytes() == b"--mmap" && args.len() == 2 {
        let p = args[1].as_bytes();
        match map_file(p) {
            Ok((size, sum)) => {
                let _ = out.write_all(p);
                let _ = writeln!(out, ": {size} bytes mapped, sum {sum}");
            }
            Err(e) => die(PROG, &format!("{}: {e}", String::from_utf8_lossy(p))),
        }
    } else if args[0].as_bytes() == b"--list" {
        if args.len() != 2 {
            die(PROG, "usage: readfile --list DIR");
        }
        let dir = args[1].as_bytes();
        match list_dir(dir) {
            Ok(names) => {
                for n in names {
                    let _ = out.write_all(&n);
                    let _ = out.write_all(b"\n");
                }
            }
            Err(e) => die(PROG, &format!("{}: {e}", String::from_utf8_lossy(dir))),
        }
    } else {
        for path in &args {
            let p = path.as_bytes();
            match read_file(p) {
                Ok((size, sum)) => {
                    let _ = out.write_all(p);
                    let _ = writeln!(out, ": {size} bytes, sum {sum}");
                }
                Err(e) => {
                    let _ = out.flush();
                    die(PROG, &format!("{}: {e}", String::from_utf8_lossy(p)))
                }
            }
        }
    }
    if let Err(e) = out.flush() {
        die(PROG, &format!("write to stdout: {e}"));
    }
}
