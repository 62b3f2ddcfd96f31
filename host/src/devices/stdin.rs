//! The console-read port ([`mobius_shared::ports::CONSOLE_READ`]): the
//! guest's program reads our standard input. The guest writes the
//! guest-physical address of `{ cap: u32, len: u32, bytes }`; we read up to
//! `cap` bytes (at most [`CONSOLE_READ_MAX`]) from descriptor 0, waiting for
//! them, and write `len` and the bytes back. Everything about the buffer is
//! checked against guest RAM first (vm-memory's bounded accessors); a bad
//! buffer is refused whole and nothing is read.
use std::io::Read;

use mobius_shared::ports::CONSOLE_READ_MAX;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Why a console read was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConsoleReadError {
    #[error("console read at {addr:#x}: the buffer is not inside guest RAM")]
    OutOfRange { addr: u64 },
    #[error(
        "console read at {addr:#x}: {cap} bytes asked, more than the {CONSOLE_READ_MAX} allowed"
    )]
    TooLong { addr: u64, cap: u32 },
}

/// The buffer's capacity, checked: `{cap, len, bytes[cap]}` lies in RAM.
fn checked_cap(
    memory: &GuestMemoryMmap,
    ram_size: u64,
    addr: u64,
) -> Result<u32, ConsoleReadError> {
    let out_of_range = ConsoleReadError::OutOfRange { addr };
    let data = addr.checked_add(8).ok_or(out_of_range)?;
    if data > ram_size {
        return Err(out_of_range);
    }
    let cap = u32::from_le(
        memory
            .read_obj::<u32>(GuestAddress(addr))
            .map_err(|_| out_of_range)?,
    );
    if cap > CONSOLE_READ_MAX {
        return Err(ConsoleReadError::TooLong { addr, cap });
    }
    match data.checked_add(u64::from(cap)) {
        Some(end) if end <= ram_size => Ok(cap),
        _ => Err(out_of_range),
    }
}

/// Serve one console read from `input`: `interrupted` says whether to give
/// up on a read cut short by a signal (the run is stopping): the guest then
/// sees the end of its input.
pub fn serve(
    memory: &GuestMemoryMmap,
    ram_size: u64,
    addr: u64,
    input: &mut dyn Read,
    interrupted: &dyn Fn() -> bool,
) -> Result<usize, ConsoleReadError> {
    let cap = checked_cap(memory, ram_size, addr)?;
    let mut buf = vec![0u8; cap as usize];
    let n = loop {
        match input.read(&mut buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted && !interrupted() => {}
            Err(_) => break 0,
        }
    };
    let out_of_range = ConsoleReadError::OutOfRange { addr };
    memory
        .write_slice(&buf[..n], GuestAddress(addr + 8))
        .map_err(|_| out_of_range)?;
    memory
        .write_obj((n as u32).to_le(), GuestAddress(addr + 4))
        .map_err(|_| out_of_range)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: u64 = 0x10000;

    fn memory() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM as usize)]).unwrap()
    }

    #[test]
    fn bytes_come_in_then_end_of_input() {
        let m = memory();
        m.write_obj(16u32.to_le(), GuestAddress(0x100)).unwrap();
        let mut input: &[u8] = b"hello";
        assert_eq!(serve(&m, RAM, 0x100, &mut input, &|| false), Ok(5));
        assert_eq!(m.read_obj::<u32>(GuestAddress(0x104)).unwrap(), 5);
        let mut got = [0u8; 5];
        m.read_slice(&mut got, GuestAddress(0x108)).unwrap();
        assert_eq!(&got, b"hello");
        assert_eq!(serve(&m, RAM, 0x100, &mut input, &|| false), Ok(0));
    }

    #[test]
    fn bad_buffers_are_refused_and_nothing_is_read() {
        let m = memory();
        let mut input: &[u8] = b"data";
        m.write_obj((CONSOLE_READ_MAX + 1).to_le(), GuestAddress(0))
            .unwrap();
        assert!(matches!(
            serve(&m, RAM, 0, &mut input, &|| false),
            Err(ConsoleReadError::TooLong { .. })
        ));
        m.write_obj(64u32.to_le(), GuestAddress(RAM - 40)).unwrap();
        assert!(matches!(
            serve(&m, RAM, RAM - 40, &mut input, &|| false),
            Err(ConsoleReadError::OutOfRange { .. })
        ));
        assert!(serve(&m, RAM, u64::MAX - 2, &mut input, &|| false).is_err());
        assert_eq!(input, b"data");
    }
}
