//! `cwd DIR FILE`: the working directory: `chdir(DIR)`, then `getcwd`,
//! opening FILE relative to it, `..`, and the errors (a missing directory:
//! ENOENT; a file: ENOTDIR); then `umask`. Prints one line per check.

use std::os::unix::ffi::OsStrExt;

use mobius_test_programs::{args, die};

const PROG: &str = "cwd";

fn main() {
    let a = args(PROG);
    if a.len() != 2 {
        die(PROG, "usage: cwd DIR FILE");
    }
    let (dir, file) = (&a[0], &a[1]);
    std::env::set_current_dir(dir).unwrap_or_else(|e| die(PROG, &format!("chdir {dir}: {e}")));
    let here = std::env::current_dir().unwrap_or_else(|e| die(PROG, &format!("getcwd: {e}")));
    println!("cwd: now {}", String::from_utf8_lossy(here.as_os_str().as_bytes()));
    let size = std::fs::metadata(file)
        .map(|m| m.len())
        .unwrap_or_else(|e| die(PROG, &format!("relative {file}: {e}")));
    println!("cwd: {file} relative: {} bytes", if size > 0 { "some" } else { "no" });
    std::env::set_current_dir("..").unwrap_or_else(|e| die(PROG, &format!("chdir ..: {e}")));
    let up = std::env::current_dir().unwrap_or_else(|e| die(PROG, &format!("getcwd: {e}")));
    println!("cwd: after .. {}", String::from_utf8_lossy(up.as_os_str().as_bytes()));
    let missing = std::env::set_current_dir("/no-such-directory").map_err(|e| e.raw_os_error());
    println!("cwd: missing directory {missing:?}");
    let not_dir = std::env::set_current_dir(format!("{dir}/{file}")).map_err(|e| e.raw_os_error());
    println!("cwd: a file {not_dir:?}");
    // SAFETY: umask has no memory effects.
    let old = unsafe { mobius_test_programs::sys::syscall1(95, 0o077) };
    // SAFETY: as above.
    let mine = unsafe { mobius_test_programs::sys::syscall1(95, old as usize) };
    println!("cwd: umask {old:o} then {mine:o}");
}
