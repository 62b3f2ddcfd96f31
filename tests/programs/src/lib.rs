//! Shared by the test programs: raw Linux x86-64 system calls (`sys`) and
//! small helpers for reporting.

pub mod sys;

use std::io::Write;

/// Print `prog: msg` on stderr and exit 1.
pub fn die(prog: &str, msg: &str) -> ! {
    let _ = writeln!(std::io::stderr(), "{prog}: {msg}");
    std::process::exit(1)
}

/// The arguments after argv[0], as UTF-8 strings (dies on anything else).
pub fn args(prog: &str) -> Vec<String> {
    std::env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string()
                .unwrap_or_else(|a| die(prog, &format!("argument is not UTF-8: {a:?}")))
        })
        .collect()
}

/// Parse a decimal number argument, or die with `what` in the message.
pub fn parse_num(prog: &str, what: &str, s: &str) -> u64 {
    s.parse()
        .unwrap_or_else(|_| die(prog, &format!("{what}: not a number: {s:?}")))
}

/// Write `line` to stdout and flush it at once (before something fatal).
pub fn say_now(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}
