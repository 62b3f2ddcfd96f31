//! What `mobius run` and `mobius stat` say about how the guest stopped: one
//! `mobius: error:` report for every ending that is not a guest status (a
//! crash carries the registers), and the few words `stat` adds when no
//! final statistics snapshot came.
use std::time::Duration;

use crate::Stop;

impl Stop {
    /// The error line (a crash report may span lines) for every ending that
    /// is not a status the guest reported; `None` for one that is.
    pub fn report(&self) -> Option<String> {
        match self {
            Stop::Guest(_) => None,
            Stop::Crash(report) => Some(format!("mobius: error: guest crashed: {report}")),
            Stop::Timeout(d) => Some(format!(
                "mobius: error: guest still running after --timeout {}; stopped",
                humanize(*d)
            )),
            Stop::Interrupted(sig) => Some(format!(
                "mobius: error: interrupted by {}; guest stopped",
                signal_name(*sig)
            )),
        }
    }

    /// Why the guest sent nothing more, in a few words: the first line of
    /// a crash report, or how the host stopped it.
    pub fn cause(&self) -> String {
        match self {
            Stop::Guest(status) => format!("it exited with status {status}"),
            Stop::Crash(report) => {
                let first = report.lines().next().unwrap_or("crashed");
                format!("it crashed: {first}")
            }
            Stop::Timeout(d) => format!("it was stopped after --timeout {}", humanize(*d)),
            Stop::Interrupted(sig) => format!("it was stopped by {}", signal_name(*sig)),
        }
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGINT => "SIGINT".to_string(),
        libc::SIGTERM => "SIGTERM".to_string(),
        n => format!("signal {n}"),
    }
}

fn humanize(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ending_but_a_status_is_reported() {
        assert_eq!(Stop::Guest(3).report(), None);
        let crash = Stop::Crash("guest shut down (triple fault)\n  rip=0x1".into());
        let report = crash.report().unwrap_or_default();
        assert!(report.starts_with(
            "mobius: error: guest crashed: guest shut down (triple fault)\n  rip=0x1"
        ));
        assert_eq!(crash.cause(), "it crashed: guest shut down (triple fault)");
        let t = Stop::Timeout(Duration::from_millis(300));
        assert!(t.report().unwrap_or_default().contains("--timeout 300ms"));
        assert_eq!(t.cause(), "it was stopped after --timeout 300ms");
        assert!(Stop::Interrupted(libc::SIGINT)
            .report()
            .unwrap_or_default()
            .contains("interrupted by SIGINT"));
        assert_eq!(Stop::Interrupted(9).cause(), "it was stopped by signal 9");
        assert_eq!(Stop::Crash(String::new()).cause(), "it crashed: crashed");
    }
}
