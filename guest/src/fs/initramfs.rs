//! The initramfs the host handed over as a PVH module: checked once at
//! boot, then read in place (read-only) for the life of the kernel.
use spin::Once;

use super::cpio::{Archive, CpioError};
use crate::mm::vmm::{FileBacking, FileError};

static ARCHIVE: Once<Archive<'static>> = Once::new();

/// Check the archive at `data` and make it the guest's initramfs.
pub fn init(data: &'static [u8]) -> Result<(), CpioError> {
    let archive = Archive::new(data)?;
    ARCHIVE.call_once(|| archive);
    Ok(())
}

/// The initramfs, if the host gave one.
pub fn archive() -> Option<&'static Archive<'static>> {
    ARCHIVE.get()
}

/// A file's bytes in the initramfs as the backing of FILE and IMAGE areas.
pub struct InitramfsFile(pub &'static [u8]);

impl FileBacking for InitramfsFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FileError> {
        let start = usize::try_from(offset).map_err(|_| FileError)?;
        let Some(rest) = self.0.get(start..) else {
            return Ok(0);
        };
        let n = buf.len().min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }

    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn as_bytes(&self) -> Option<&[u8]> {
        Some(self.0)
    }

    /// The archive never changes: where a file's bytes lie says which it is.
    fn id(&self) -> Option<usize> {
        Some(self.0.as_ptr() as usize)
    }
}
