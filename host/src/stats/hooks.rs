//! The [`RunHooks`] that collect the guest's statistics: console output goes
//! through [`SerialStatsFilter`], which takes the `mobius-stats:` lines out
//! and hands them to the shared [`StatsCollector`].
use std::io::Write;

use mobius_shared::layout::{MMIO_BASE, MMIO_DEVICE_SIZE, VIRTIO_IRQ_BASE};

use super::collector::{SharedCollector, StatsCollector};
use super::serial::SerialStatsFilter;
use crate::devices::virtio::VirtioConsole;
use crate::{Error, RunHooks, Vm};

/// Hooks for a run whose statistics the host wants.
pub struct StatsHooks {
    pub collector: SharedCollector,
    /// Offer the virtio console for statistics (else the guest uses serial).
    pub virtio: bool,
}

impl StatsHooks {
    pub fn new() -> Self {
        StatsHooks {
            collector: StatsCollector::shared(),
            virtio: true,
        }
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
