//! `VM_MEM_*` flags and their translation to page attributes.
use crate::mm::paging::PageAttrs;

bitflags::bitflags! {
    /// Möbius `VM_MEM_*` flags, same values as on the API page.
    ///
    /// `VM_MEM_KERNEL` (0) is [`MemFlags::KERNEL`], the empty set of PL bits.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct MemFlags: u32 {
        /// `VM_MEM_USER` (3): accessible from user mode and kernel mode.
        const USER = 0x3;
        /// `VM_MEM_PL_MASK` (3): the privilege-level bits.
        const PL_MASK = 0x3;
        /// `VM_MEM_READ` (4): readable. x86 cannot express "not readable"; a
        /// mapping without READ is still accepted and readable.
        const READ = 0x4;
        /// `VM_MEM_WRITE` (8): writable; allows the clean → dirty upgrade.
        const WRITE = 0x8;
        /// `VM_MEM_ZERO` (0x10): zero each page before use. Every NORMAL
        /// page is zero-filled anyway (fixes B13), so this only documents intent.
        const ZERO = 0x10;
        /// `VM_MEM_CACHE_WT` (0x20): write-through caching → PWT.
        const CACHE_WT = 0x20;
        /// `VM_MEM_CACHE_NONE` (0x40): caching disabled → PCD.
        const CACHE_NONE = 0x40;
        /// `VM_MEM_LITERAL` (0x80): a start address of 0 means address 0,
        /// not "choose one". Page 0 is never mappable here, so such a request
        /// fails with `OutOfRange` instead of being placed elsewhere.
        const LITERAL = 0x80;
        /// `VM_MEM_RESERVED` (0x100): a reserved node (nodes only).
        const RESERVED = 0x100;
    }
}

impl MemFlags {
    /// `VM_MEM_KERNEL` (0): kernel-only access; automatic placement in the kernel half.
    pub const KERNEL: MemFlags = MemFlags::empty();
    /// `VM_MEM_NODE_MASK` (0x16F): flags kept on a node.
    pub const NODE_MASK: MemFlags = MemFlags::from_bits_truncate(0x16F);
    /// Flags valid for creating an area (everything except RESERVED).
    pub const AREA_MASK: MemFlags = MemFlags::from_bits_truncate(0xFF);

    /// PL bits say user (3). PL 1 and 2 are rejected by [`MemFlags::validate_area`].
    pub fn is_user(self) -> bool {
        self.bits() & 3 == 3
    }

    /// Check flags given to an area-creating call: only known bits, no
    /// RESERVED, PL either 0 (kernel) or 3 (user).
    pub fn validate_area(bits: u32) -> Option<MemFlags> {
        let f = MemFlags::from_bits(bits)?;
        let pl = bits & 3;
        (!f.contains(MemFlags::RESERVED) && (pl == 0 || pl == 3)).then_some(f)
    }

    /// Hardware attributes for a page of an area with these flags.
    /// `writable` is the state (dirty) rather than the permission; `no_exec`
    /// comes from the area kind (see [`crate::mm::vmm::AreaKind`]).
    pub fn page_attrs(self, writable: bool, no_exec: bool) -> PageAttrs {
        let mut a = PageAttrs::empty();
        a.set(
            PageAttrs::WRITABLE,
            writable && self.contains(MemFlags::WRITE),
        );
        a.set(PageAttrs::USER, self.is_user());
        a.set(PageAttrs::WRITE_THROUGH, self.contains(MemFlags::CACHE_WT));
        a.set(
            PageAttrs::CACHE_DISABLE,
            self.contains(MemFlags::CACHE_NONE),
        );
        a.set(PageAttrs::NO_EXECUTE, no_exec);
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_the_api_page() {
        assert_eq!(MemFlags::KERNEL.bits(), 0);
        assert_eq!(MemFlags::USER.bits(), 3);
        assert_eq!(MemFlags::PL_MASK.bits(), 3);
        assert_eq!(MemFlags::READ.bits(), 4);
        assert_eq!(MemFlags::WRITE.bits(), 8);
        assert_eq!(MemFlags::ZERO.bits(), 0x10);
        assert_eq!(MemFlags::CACHE_WT.bits(), 0x20);
        assert_eq!(MemFlags::CACHE_NONE.bits(), 0x40);
        assert_eq!(MemFlags::LITERAL.bits(), 0x80);
        assert_eq!(MemFlags::RESERVED.bits(), 0x100);
        assert_eq!(MemFlags::NODE_MASK.bits(), 0x16F);
    }

    #[test]
    fn attrs() {
        // §9 row 14: cache attributes reach the PTE.
        let f = MemFlags::USER | MemFlags::WRITE | MemFlags::CACHE_NONE | MemFlags::CACHE_WT;
        let a = f.page_attrs(true, true);
        assert!(a.contains(
            PageAttrs::USER
                | PageAttrs::WRITABLE
                | PageAttrs::CACHE_DISABLE
                | PageAttrs::WRITE_THROUGH
                | PageAttrs::NO_EXECUTE
        ));
        assert!(!MemFlags::READ
            .page_attrs(true, false)
            .contains(PageAttrs::WRITABLE));
        assert!(MemFlags::validate_area(1).is_none());
        assert!(MemFlags::validate_area(0x100).is_none());
        assert!(MemFlags::validate_area(0x1000).is_none());
        assert_eq!(
            MemFlags::validate_area(0xF),
            Some(MemFlags::USER | MemFlags::READ | MemFlags::WRITE)
        );
    }
}
