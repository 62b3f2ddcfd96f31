//! [`VmError`]: every way a VMM call can be refused. A call that returns an
//! error has changed nothing.
use core::fmt;

/// Why a VMM call failed (Möbius returned NULL/false and set `errno`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmError {
    /// A page count of zero.
    ZeroPages,
    /// An address (or physical address, or file offset) not page aligned.
    Unaligned,
    /// The range overlaps an area (`EACCESS` in Möbius).
    Overlap,
    /// The range leaves both halves of the address space, touches page 0,
    /// or crosses from one half to the other.
    OutOfRange,
    /// No area or reservation starts at or covers the address (double free).
    NotAllocated,
    /// The address is inside an area but not its base (`VmmFree(interior)`).
    NotBase,
    /// No area is shared under that name (`ENOTFOUND`).
    UnknownName,
    /// An area is already shared under that name.
    NameExists,
    /// Flags not valid for the call (`EINVALID`).
    InvalidFlags,
    /// A mapping would widen the protection or privilege of a shared area.
    PermissionDenied,
    /// No physical frame left (`ENOMEM`).
    OutOfFrames,
    /// No free range of address space large enough (`ENOMEM`).
    AddressSpaceExhausted,
    /// The address-space id or share handle is not live.
    BadHandle,
    /// Area parameters are inconsistent (for example image sections).
    InvalidArea,
    /// The space is the one the CPU is running on (its root is in CR3).
    SpaceLive,
}

impl fmt::Display for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            VmError::ZeroPages => "page count is zero",
            VmError::Unaligned => "address not page aligned",
            VmError::Overlap => "range overlaps an existing area",
            VmError::OutOfRange => "range outside the address space",
            VmError::NotAllocated => "no area at this address",
            VmError::NotBase => "address is not the base of an area",
            VmError::UnknownName => "no area shared under this name",
            VmError::NameExists => "name already shared",
            VmError::InvalidFlags => "flags not valid for this call",
            VmError::PermissionDenied => "mapping would widen the area's protection",
            VmError::OutOfFrames => "out of physical frames",
            VmError::AddressSpaceExhausted => "address space exhausted",
            VmError::BadHandle => "stale or unknown handle",
            VmError::InvalidArea => "inconsistent area parameters",
            VmError::SpaceLive => "address space is live in CR3",
        };
        f.write_str(s)
    }
}
