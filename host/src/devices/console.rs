//! The console-write port ([`mobius_shared::ports::CONSOLE_WRITE`]): the guest
//! writes the guest-physical address of `{ len: u32, bytes }` and the host
//! prints the bytes as COM1 output. Everything about the buffer comes from an
//! untrusted guest: it is read through vm-memory's bounds-checked accessors,
//! and a buffer outside RAM or longer than the limit is refused whole.

use mobius_shared::ports::CONSOLE_WRITE_MAX;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Why a console write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConsoleWriteError {
    #[error("console write at {addr:#x}: the buffer is not inside guest RAM")]
    OutOfRange { addr: u64 },
    #[error("console write at {addr:#x}: {len} bytes, more than the {CONSOLE_WRITE_MAX} allowed")]
    TooLong { addr: u64, len: u32 },
}

/// The bytes of the guest's console buffer at `addr`.
pub fn read_console_write(
    memory: &GuestMemoryMmap,
    ram_size: u64,
    addr: u64,
) -> Result<Vec<u8>, ConsoleWriteError> {
    let out_of_range = ConsoleWriteError::OutOfRange { addr };
    let data = addr.checked_add(4).ok_or(out_of_range)?;
    if data > ram_size {
        return Err(out_of_range);
    }
    let len: u32 = memory
        .read_obj::<u32>(GuestAddress(addr))
        .map_err(|_| out_of_range)?;
    let len = u32::from_le(len);
    if len > CONSOLE_WRITE_MAX {
        return Err(ConsoleWriteError::TooLong { addr, len });
    }
    match data.checked_add(u64::from(len)) {
        Some(end) if end <= ram_size => {}
        _ => return Err(out_of_range),
    }
    let mut bytes = vec![0u8; len as usize];
    memory
        .read_slice(&mut bytes, GuestAddress(data))
        .map_err(|_| out_of_range)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: u64 = 0x10000;

    fn memory() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM as usize)]).unwrap()
    }

    fn put(m: &GuestMemoryMmap, addr: u64, len: u32, text: &[u8]) {
        m.write_obj(len.to_le(), GuestAddress(addr)).unwrap();
        m.write_slice(text, GuestAddress(addr + 4)).unwrap();
    }

    #[test]
    fn reads_the_buffer() {
        let m = memory();
        put(&m, 0x1000, 6, b"hello\n");
        assert_eq!(read_console_write(&m, RAM, 0x1000).unwrap(), b"hello\n");
        put(&m, 0x2000, 0, b"");
        assert_eq!(read_console_write(&m, RAM, 0x2000).unwrap(), b"");
        // Ending exactly at the end of RAM is fine.
        put(&m, RAM - 6, 2, b"ok");
        assert_eq!(read_console_write(&m, RAM, RAM - 6).unwrap(), b"ok");
    }

    #[test]
    fn refuses_buffers_outside_ram_or_too_long() {
        let m = memory();
        let out = |addr| Err(ConsoleWriteError::OutOfRange { addr });
        assert_eq!(read_console_write(&m, RAM, RAM), out(RAM));
        assert_eq!(read_console_write(&m, RAM, RAM - 3), out(RAM - 3));
        assert_eq!(read_console_write(&m, RAM, u64::MAX - 2), out(u64::MAX - 2));
        // A length running past the end of RAM.
        put(&m, RAM - 8, 100, b"");
        assert_eq!(read_console_write(&m, RAM, RAM - 8), out(RAM - 8));
        put(&m, 0x3000, CONSOLE_WRITE_MAX + 1, b"");
        assert_eq!(
            read_console_write(&m, RAM, 0x3000),
            Err(ConsoleWriteError::TooLong {
                addr: 0x3000,
                len: CONSOLE_WRITE_MAX + 1
            })
        );
        put(&m, 0x3000, u32::MAX, b"");
        assert!(read_console_write(&m, RAM, 0x3000).is_err());
    }
}
