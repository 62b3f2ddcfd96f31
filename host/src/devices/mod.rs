//! Devices the guest talks to: the port-I/O devices of the run loop (COM1
//! serial, console write, debug exit, frame discard) and a small MMIO bus on which other
//! devices (the virtio-mmio console) are registered at guest-physical windows.

pub mod console;
pub mod discard;
pub mod serial;
pub mod stdin;
pub mod virtio;
pub mod xstate;

use std::fmt;

/// A device behind a guest-physical MMIO window. `offset` is relative to the
/// window's base. Reads must fill all of `data`.
pub trait MmioDevice: Send {
    fn read(&mut self, offset: u64, data: &mut [u8]);
    fn write(&mut self, offset: u64, data: &[u8]);
}

/// Why a device could not be registered on the [`MmioBus`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    #[error("MMIO window {base:#x}+{size:#x} is empty or wraps around")]
    BadWindow { base: u64, size: u64 },
    #[error("MMIO window {base:#x}+{size:#x} overlaps an already registered device")]
    Overlap { base: u64, size: u64 },
}

struct Window {
    base: u64,
    size: u64,
    device: Box<dyn MmioDevice>,
}

/// Guest-physical MMIO windows, each served by one device. Few devices are
/// expected, so a sorted vector is all the structure needed.
#[derive(Default)]
pub struct MmioBus {
    windows: Vec<Window>,
}

impl fmt::Debug for MmioBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.windows.iter().map(|w| (w.base, w.size)))
            .finish()
    }
}

impl MmioBus {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `device` for the addresses `[base, base + size)`.
    pub fn insert(
        &mut self,
        base: u64,
        size: u64,
        device: Box<dyn MmioDevice>,
    ) -> Result<(), BusError> {
        let end = match base.checked_add(size) {
            Some(end) if size > 0 => end,
            _ => return Err(BusError::BadWindow { base, size }),
        };
        if self
            .windows
            .iter()
            .any(|w| base < w.base + w.size && w.base < end)
        {
            return Err(BusError::Overlap { base, size });
        }
        let at = self.windows.partition_point(|w| w.base < base);
        self.windows.insert(at, Window { base, size, device });
        Ok(())
    }

    fn find(&mut self, addr: u64, len: usize) -> Option<(&mut Window, u64)> {
        let w = self
            .windows
            .iter_mut()
            .find(|w| addr >= w.base && addr - w.base < w.size)?;
        let offset = addr - w.base;
        // The whole access must stay inside the window.
        (offset.checked_add(len as u64)? <= w.size).then_some((w, offset))
    }

    /// Dispatch a read; `false` if no device covers the access.
    pub fn read(&mut self, addr: u64, data: &mut [u8]) -> bool {
        match self.find(addr, data.len()) {
            Some((w, offset)) => {
                w.device.read(offset, data);
                true
            }
            None => false,
        }
    }

    /// Dispatch a write; `false` if no device covers the access.
    pub fn write(&mut self, addr: u64, data: &[u8]) -> bool {
        match self.find(addr, data.len()) {
            Some((w, offset)) => {
                w.device.write(offset, data);
                true
            }
            None => false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    type Log = Arc<Mutex<Vec<(u64, Vec<u8>)>>>;
    struct Recorder(Log);
    impl MmioDevice for Recorder {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.0.lock().unwrap().push((offset, data.to_vec()));
        }
    }

    #[test]
    fn dispatches_by_window_and_rejects_overlap() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut bus = MmioBus::new();
        bus.insert(0xd000_0000, 0x1000, Box::new(Recorder(log.clone())))
            .unwrap();
        assert_eq!(
            bus.insert(0xd000_0800, 0x1000, Box::new(Recorder(log.clone()))),
            Err(BusError::Overlap {
                base: 0xd000_0800,
                size: 0x1000
            })
        );
        assert!(bus.insert(0, 0, Box::new(Recorder(log.clone()))).is_err());
        assert!(bus
            .insert(u64::MAX, 2, Box::new(Recorder(log.clone())))
            .is_err());

        let mut buf = [0u8; 4];
        assert!(bus.read(0xd000_0010, &mut buf));
        assert_eq!(buf, [0x10; 4]);
        assert!(bus.write(0xd000_0020, &[1, 2]));
        assert_eq!(log.lock().unwrap()[0], (0x20, vec![1, 2]));
        // Outside, and straddling the end of the window.
        assert!(!bus.read(0xd000_1000, &mut buf));
        assert!(!bus.read(0xd000_0ffe, &mut buf));
    }
}
