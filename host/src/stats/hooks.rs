//! The [`RunHooks`] that collect the guest's statistics: console output goes
//! through [`SerialStatsFilter`], which takes the `mobius-stats:` lines out
//! and hands them to the shared [`StatsCollector`].
use std::io::Write;

use super::collector::{SerialStatsFilter, SharedCollector, StatsCollector};
use crate::RunHooks;

/// Hooks for a run whose statistics the host wants.
pub struct StatsHooks {
    pub collector: SharedCollector,
    /// Send the guest's console to stderr (so stdout carries only `--json`).
    pub console_to_stderr: bool,
}

impl StatsHooks {
    pub fn new() -> Self {
        StatsHooks {
            collector: StatsCollector::shared(),
            console_to_stderr: false,
        }
    }
}

impl Default for StatsHooks {
    fn default() -> Self {
        Self::new()
    }
}

impl RunHooks for StatsHooks {
    fn serial_output(&mut self) -> Box<dyn Write + Send> {
        let console: Box<dyn Write + Send> = if self.console_to_stderr {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        };
        Box::new(SerialStatsFilter::new(console, self.collector.clone()))
    }
}
