//! The [`RunHooks`] that collect the guest's statistics: console output goes
//! through [`SerialStatsFilter`], which takes the `mobius-stats:` lines out
//! and hands them to the shared [`StatsCollector`].
use std::io::Write;

use mobius_shared::layout::{MMIO_BASE, MMIO_DEVICE_SIZE, VIRTIO_IRQ_BASE};

use super::collector::{SharedCollector, StatsCollector};
use super::serial::SerialStatsFilter;
use super::Snapshot;
use crate::devices::virtio::VirtioConsole;
use crate::{Error, RunHooks, Vm};

/// Hooks for a run whose statistics the host wants: pass them to
/// [`crate::run_vm`], then read what the guest sent from [`Self::collector`]
/// (or just its last word, [`Self::final_snapshot`]). The guest's console
/// still goes to stdout, without its `mobius-stats:` lines.
///
/// ```no_run
/// use mobius::{run_vm, FaultKind, RunConfig, StatsHooks};
///
/// let config = RunConfig {
///     cmdline: "workload=read-then-write pages=50".into(),
///     ..RunConfig::default()
/// };
/// let mut hooks = StatsHooks::new();
/// run_vm(&config, &mut hooks)?;
/// let snap = hooks.final_snapshot().expect("a final snapshot");
/// // Reading maps each page clean, writing makes it dirty: one upgrade each.
/// assert_eq!(snap.faults[FaultKind::Upgrade.index()].count, 50);
/// // Everything the collector saw: snapshots decoded, frames refused.
/// let collector = hooks.collector.lock();
/// assert!(collector.decoded() >= 1);
/// assert!(collector.errors().summary().is_none());
/// # Ok::<(), mobius::Error>(())
/// ```
pub struct StatsHooks {
    /// Where the guest's statistics frames end up, decoded.
    pub collector: SharedCollector,
    /// Offer the virtio console for statistics (else the guest uses serial).
    pub virtio: bool,
}

impl StatsHooks {
    /// Statistics over the virtio console, into a fresh collector.
    pub fn new() -> Self {
        StatsHooks {
            collector: StatsCollector::shared(),
            virtio: true,
        }
    }

    /// The snapshot the guest sent when it stopped (or the last one it sent,
    /// if it sent none at exit); `None` if it sent none (a crash early on, a
    /// kernel that does not report).
    pub fn final_snapshot(&self) -> Option<Snapshot> {
        self.collector.lock().final_snapshot().cloned()
    }
}

impl Default for StatsHooks {
    fn default() -> Self {
        Self::new()
    }
}

impl RunHooks for StatsHooks {
    /// Put the virtio console at the first MMIO window and announce it the
    /// way Linux (and QEMU's microvm) does: `virtio_mmio.device=4K@<addr>:<irq>`.
    fn before_boot(&mut self, vm: &mut Vm) -> Result<(), Error> {
        if !self.virtio {
            return Ok(());
        }
        let console = VirtioConsole::new(vm.memory().clone(), self.collector.clone());
        vm.add_mmio_device(MMIO_BASE, MMIO_DEVICE_SIZE, Box::new(console))?;
        vm.announce_virtio_mmio(MMIO_BASE, MMIO_DEVICE_SIZE, VIRTIO_IRQ_BASE);
        Ok(())
    }

    fn serial_output(&mut self) -> Box<dyn Write + Send> {
        Box::new(SerialStatsFilter::new(
            Box::new(std::io::stdout()),
            self.collector.clone(),
        ))
    }
}
