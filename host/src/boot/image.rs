//! Where the kernel ELF's bytes come from: the image bundled in the binary,
//! or a file read on demand.
//!
//! A kernel file is mostly debug sections (the guest ELF is ~5 MB, its
//! `PT_LOAD` data ~0.45 MB), so it is not read whole: [`KernelImage`] reads
//! by offset (`pread`), and only what [`super::elf`] asks for: the ELF
//! header, the program headers, the notes, and each `PT_LOAD`'s file bytes,
//! straight into guest memory. Nothing is allocated by a size the file
//! states beyond the program-header table, which [`super::elf::check`]
//! bounds by the file's length first.

use std::fs::File;
use std::io::{self, Cursor, ErrorKind, Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use vm_memory::bitmap::BitmapSlice;
use vm_memory::{ReadVolatile, VolatileMemoryError, VolatileSlice};

/// A kernel image: bytes in memory, or an open file read by offset.
#[derive(Debug)]
pub enum KernelImage<'a> {
    Bytes(Cursor<&'a [u8]>),
    File(KernelFile),
}

/// An open kernel file, read with `pread` at a position kept here (no
/// `lseek`: the seccomp list of `mobius stat -r N` does not need one).
#[derive(Debug)]
pub struct KernelFile {
    file: File,
    len: u64,
    pos: u64,
}

impl<'a> KernelImage<'a> {
    /// An image in memory (the one bundled in the binary).
    pub fn bytes(bytes: &'a [u8]) -> KernelImage<'a> {
        KernelImage::Bytes(Cursor::new(bytes))
    }

    /// Open `path` and take its length; nothing is read yet.
    pub fn open(path: &Path) -> io::Result<KernelImage<'a>> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        Ok(KernelImage::File(KernelFile {
            file,
            len: meta.len(),
            pos: 0,
        }))
    }

    /// Length of the image in bytes.
    pub fn len(&self) -> u64 {
        match self {
            KernelImage::Bytes(c) => c.get_ref().len() as u64,
            KernelImage::File(f) => f.len,
        }
    }

    /// Whether the image is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fill `buf` from `offset`; an error if the image ends first.
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match self {
            KernelImage::Bytes(c) => {
                let bytes = *c.get_ref();
                let range = usize::try_from(offset)
                    .ok()
                    .and_then(|start| Some(start..start.checked_add(buf.len())?))
                    .and_then(|r| bytes.get(r))
                    .ok_or_else(|| io::Error::from(ErrorKind::UnexpectedEof))?;
                buf.copy_from_slice(range);
                Ok(())
            }
            KernelImage::File(f) => f.file.read_exact_at(buf, offset),
        }
    }
}

impl Read for KernelImage<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            KernelImage::Bytes(c) => c.read(buf),
            KernelImage::File(f) => {
                let n = f.file.read_at(buf, f.pos)?;
                f.pos += n as u64;
                Ok(n)
            }
        }
    }
}

impl Seek for KernelImage<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        match self {
            KernelImage::Bytes(c) => c.seek(to),
            KernelImage::File(f) => {
                let pos = match to {
                    SeekFrom::Start(n) => Some(n),
                    SeekFrom::Current(d) => f.pos.checked_add_signed(d),
                    SeekFrom::End(d) => f.len.checked_add_signed(d),
                };
                f.pos = pos.ok_or_else(|| {
                    io::Error::new(
                        ErrorKind::InvalidInput,
                        "seek before the start or past 2^64",
                    )
                })?;
                Ok(f.pos)
            }
        }
    }
}

impl ReadVolatile for KernelImage<'_> {
    fn read_volatile<B: BitmapSlice>(
        &mut self,
        buf: &mut VolatileSlice<B>,
    ) -> Result<usize, VolatileMemoryError> {
        match self {
            KernelImage::Bytes(c) => c.read_volatile(buf),
            KernelImage::File(f) => {
                let n = f.pread_volatile(buf)?;
                f.pos += n as u64;
                Ok(n)
            }
        }
    }
}

impl KernelFile {
    /// One `pread` at the current position straight into guest memory.
    fn pread_volatile<B: BitmapSlice>(
        &self,
        buf: &mut VolatileSlice<B>,
    ) -> Result<usize, VolatileMemoryError> {
        let offset = libc::off_t::try_from(self.pos)
            .map_err(|_| VolatileMemoryError::IOError(io::Error::from(ErrorKind::UnexpectedEof)))?;
        let guard = buf.ptr_guard_mut();
        let dst = guard.as_ptr().cast::<libc::c_void>();
        // SAFETY: the fd is open (owned by `self.file`); `dst` is valid for
        // writes of `buf.len()` bytes by the invariants of `VolatileSlice`
        // (as in vm-memory's own `read_volatile` for a `File`).
        let n = unsafe { libc::pread(self.file.as_raw_fd(), dst, buf.len(), offset) };
        if n < 0 {
            // A partial read may have happened before the error.
            buf.bitmap().mark_dirty(0, buf.len());
            return Err(VolatileMemoryError::IOError(io::Error::last_os_error()));
        }
        let n = n.unsigned_abs();
        buf.bitmap().mark_dirty(0, n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn file_reads_by_offset_like_the_bytes() {
        static DATA: &[u8] = b"0123456789abcdef";
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(DATA).unwrap();
        for mut image in [
            KernelImage::bytes(DATA),
            KernelImage::open(tmp.path()).unwrap(),
        ] {
            assert_eq!(image.len(), 16);
            let mut b = [0u8; 4];
            image.read_exact_at(&mut b, 10).unwrap();
            assert_eq!(&b, b"abcd");
            assert!(image.read_exact_at(&mut b, 14).is_err());
            assert!(image.read_exact_at(&mut b, u64::MAX).is_err());
            image.seek(SeekFrom::Start(4)).unwrap();
            image.seek(SeekFrom::Current(2)).unwrap();
            image.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"6789");
            assert!(image.seek(SeekFrom::Current(-100)).is_err());
            // Past the end reads nothing.
            image.seek(SeekFrom::Start(1 << 40)).unwrap();
            assert_eq!(image.read(&mut b).unwrap(), 0);
        }
        assert!(KernelImage::open(Path::new("/")).is_err());
    }
}
