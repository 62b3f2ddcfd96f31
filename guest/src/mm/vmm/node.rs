//! The nodes of one half of an address space (Möbius `vm_node_t`).
//!
//! A [`NodeTree`] covers its half completely with disjoint nodes that are
//! empty, reserved or mapped. Mapped and reserved nodes live in an
//! `alloc::collections::BTreeMap` keyed by base address (a B-tree: balanced,
//! O(log n), iterative; fixes B1); the empty nodes are the gaps between them,
//! kept in a second map (base → pages) that lowest-first placement walks.
//! Empty nodes are split on allocation and coalesced on free (B2); fixed
//! placement checks the whole range (B3).
//!
//! Keeping free space out of the node map is what makes areas cheap to
//! create and free: each is one insertion into (or removal from) the node
//! map, and the free-space map is searched only for placement and merging.
//! On kvm_pvm every instruction of a search is emulated; a search of the node
//! map costs a few hundred of them at 100,000 nodes.
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::area::DescId;
use super::flags::MemFlags;
use super::VmError;
use crate::mm::paging::{VirtAddr, PAGE_SIZE};

/// What a node holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// Free address space (`VMM_NODE_IS_EMPTY`).
    Empty,
    /// Reserved by `VmmReserveArea` (`VM_MEM_RESERVED`): skipped by automatic
    /// placement, carved by fixed-address allocations.
    Reserved,
    /// Maps the area descriptor `desc` with the node's `flags`
    /// (masked with `VM_MEM_NODE_MASK`).
    Mapped { desc: DescId, flags: MemFlags },
}

/// One node (`vm_node_t`): `pages` pages from its base (the map key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub pages: u64,
    pub kind: NodeKind,
}

impl Node {
    fn end(&self, base: VirtAddr) -> VirtAddr {
        base + self.pages * PAGE_SIZE
    }

    fn empty(pages: u64) -> Node {
        Node {
            pages,
            kind: NodeKind::Empty,
        }
    }
}

/// The nodes of one half: `[start, end)`, always fully covered.
#[derive(Debug, Clone)]
pub struct NodeTree {
    /// Mapped and reserved nodes, by base.
    nodes: BTreeMap<VirtAddr, Node>,
    /// Empty nodes, by base: their length in pages. Never two adjacent.
    empties: BTreeMap<VirtAddr, u64>,
    start: VirtAddr,
    end: VirtAddr,
}

impl NodeTree {
    /// One empty node covering `[start, end)`.
    pub fn new(start: VirtAddr, end: VirtAddr) -> Self {
        let mut empties = BTreeMap::new();
        empties.insert(start, (end - start) / PAGE_SIZE);
        NodeTree {
            nodes: BTreeMap::new(),
            empties,
            start,
            end,
        }
    }

    pub fn start(&self) -> VirtAddr {
        self.start
    }

    pub fn end(&self) -> VirtAddr {
        self.end
    }

    /// Nodes in address order, empty ones included.
    pub fn iter(&self) -> impl Iterator<Item = (VirtAddr, Node)> + '_ {
        let mut full = self.nodes.iter().map(|(b, n)| (*b, *n)).peekable();
        let mut free = self
            .empties
            .iter()
            .map(|(b, p)| (*b, Node::empty(*p)))
            .peekable();
        core::iter::from_fn(move || match (full.peek(), free.peek()) {
            (Some(a), Some(b)) if a.0 < b.0 => full.next(),
            (Some(_), None) => full.next(),
            _ => free.next(),
        })
    }

    /// The mapped nodes' bases and areas, in address order.
    pub fn mapped(&self) -> impl Iterator<Item = (VirtAddr, DescId)> + '_ {
        self.nodes.iter().filter_map(|(b, n)| match n.kind {
            NodeKind::Mapped { desc, .. } => Some((*b, desc)),
            _ => None,
        })
    }

    /// Number of nodes, empty ones included.
    pub fn len(&self) -> usize {
        self.nodes.len() + self.empties.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Levels of the node map's B-tree a lookup visits, worst case for the
    /// node count (leaves hold at least 5 keys, inner nodes at least 6
    /// children), plus one for the free-space map when the address is free.
    pub fn depth(&self) -> u64 {
        let (mut depth, mut reach) = (1u64, 11usize);
        while reach < self.nodes.len() {
            reach = reach.saturating_mul(6);
            depth += 1;
        }
        depth
    }

    /// The mapped or reserved node containing `addr`, with its base.
    fn full_at(&self, addr: VirtAddr) -> Option<(VirtAddr, Node)> {
        let (base, node) = self.nodes.range(..=addr).next_back()?;
        (addr < node.end(*base)).then_some((*base, *node))
    }

    /// The node containing `addr` (`VmmLookupNode`), with its base.
    pub fn lookup(&self, addr: VirtAddr) -> Option<(VirtAddr, Node)> {
        if addr < self.start || addr >= self.end {
            return None;
        }
        if let Some(found) = self.full_at(addr) {
            return Some(found);
        }
        let (base, pages) = self.empties.range(..=addr).next_back()?;
        let node = Node::empty(*pages);
        (addr < node.end(*base)).then_some((*base, node))
    }

    /// Lowest empty node with room for `pages` (`VmmFindEmptyNode`, whole
    /// range inside this half).
    pub fn find_free(&self, pages: u64) -> Option<VirtAddr> {
        self.empties
            .iter()
            .find(|(_, &p)| p >= pages)
            .map(|(&b, _)| b)
    }

    /// Mapped and reserved nodes overlapping `[base, end)`.
    fn overlapping(
        &self,
        base: VirtAddr,
        end: VirtAddr,
    ) -> impl Iterator<Item = (VirtAddr, Node)> + '_ {
        let first = self.full_at(base).map_or(base, |(b, _)| b);
        self.nodes.range(first..end).map(|(b, n)| (*b, *n))
    }

    /// Check that `[base, base + pages)` lies in this half and only over
    /// empty nodes (or reserved ones when `carve_reserved`).
    pub fn check_fixed(
        &self,
        base: VirtAddr,
        pages: u64,
        carve_reserved: bool,
    ) -> Result<(), VmError> {
        let end = pages
            .checked_mul(PAGE_SIZE)
            .and_then(|b| base.checked_add(b))
            .ok_or(VmError::OutOfRange)?;
        if base < self.start || end > self.end {
            return Err(VmError::OutOfRange);
        }
        for (_, node) in self.overlapping(base, end) {
            match node.kind {
                NodeKind::Reserved if carve_reserved => {}
                _ => return Err(VmError::Overlap),
            }
        }
        Ok(())
    }

    /// Put a node of `kind` (mapped or reserved) at `[base, base + pages)`,
    /// splitting the nodes it overlaps; their outside parts keep their kind.
    /// Call `check_fixed` first.
    pub fn carve(&mut self, base: VirtAddr, pages: u64, kind: NodeKind) {
        debug_assert!(
            kind != NodeKind::Empty,
            "carve makes areas and reservations"
        );
        let end = base + pages * PAGE_SIZE;
        match self.empties.remove(&base) {
            // The common case (lowest-first placement): the start of a free range.
            Some(free) if free >= pages => {
                if free > pages {
                    self.empties.insert(end, free - pages);
                }
            }
            taken => {
                if let Some(free) = taken {
                    self.empties.insert(base, free);
                }
                self.clear(base, end);
            }
        }
        self.nodes.insert(base, Node { pages, kind });
    }

    /// Take every node out of `[base, end)`, keeping the parts outside it.
    fn clear(&mut self, base: VirtAddr, end: VirtAddr) {
        let full: Vec<(VirtAddr, Node)> = self.overlapping(base, end).collect();
        for (b, node) in full {
            self.nodes.remove(&b);
            self.keep_outside(b, node, base, end, |t, at, n| {
                t.nodes.insert(at, n);
            });
        }
        let first = match self.empties.range(..=base).next_back() {
            Some((&b, &p)) if Node::empty(p).end(b) > base => b,
            _ => base,
        };
        let free: Vec<(VirtAddr, u64)> = self
            .empties
            .range(first..end)
            .map(|(b, p)| (*b, *p))
            .collect();
        for (b, p) in free {
            self.empties.remove(&b);
            self.keep_outside(b, Node::empty(p), base, end, |t, at, n| {
                t.empties.insert(at, n.pages);
            });
        }
    }

    /// Put back the parts of `node` (at `b`) before `base` and after `end`.
    fn keep_outside(
        &mut self,
        b: VirtAddr,
        node: Node,
        base: VirtAddr,
        end: VirtAddr,
        put: impl Fn(&mut Self, VirtAddr, Node),
    ) {
        let node_end = node.end(b);
        if b < base {
            put(
                self,
                b,
                Node {
                    pages: (base - b) / PAGE_SIZE,
                    kind: node.kind,
                },
            );
        }
        if node_end > end {
            put(
                self,
                end,
                Node {
                    pages: (node_end - end) / PAGE_SIZE,
                    kind: node.kind,
                },
            );
        }
    }

    /// Cut the mapped or reserved node at `base` after `head` pages (0 <
    /// `head` < its pages): it keeps the first part, a new node of
    /// `tail_kind` takes the rest. One map update and one insertion, no
    /// free space touched. [`VmError::NotAllocated`] if no such node.
    pub fn cut(&mut self, base: VirtAddr, head: u64, tail_kind: NodeKind) -> Result<(), VmError> {
        let node = self.nodes.get_mut(&base).ok_or(VmError::NotAllocated)?;
        if head == 0 || head >= node.pages || tail_kind == NodeKind::Empty {
            return Err(VmError::OutOfRange);
        }
        let tail = Node {
            pages: node.pages - head,
            kind: tail_kind,
        };
        node.pages = head;
        self.nodes.insert(base + head * PAGE_SIZE, tail);
        Ok(())
    }

    /// Give the mapped or reserved node at `base` a new kind (mapped or
    /// reserved), in place. [`VmError::NotAllocated`] if no such node.
    pub fn set_kind(&mut self, base: VirtAddr, kind: NodeKind) -> Result<(), VmError> {
        if kind == NodeKind::Empty {
            return Err(VmError::InvalidArea);
        }
        self.nodes
            .get_mut(&base)
            .map(|n| n.kind = kind)
            .ok_or(VmError::NotAllocated)
    }

    /// Turn the mapped or reserved node at `base` back into free space,
    /// merging it with empty neighbours, and return it (`VmmFreeNode`).
    /// [`VmError::NotBase`] for an interior address of a node,
    /// [`VmError::NotAllocated`] for free space or outside the half.
    pub fn release(&mut self, base: VirtAddr) -> Result<Node, VmError> {
        let Some(old) = self.nodes.remove(&base) else {
            return Err(match self.full_at(base) {
                Some(_) => VmError::NotBase,
                None => VmError::NotAllocated,
            });
        };
        let end = old.end(base);
        let mut pages = old.pages;
        if let Some(next) = self.empties.remove(&end) {
            pages += next;
        }
        match self.empties.range_mut(..base).next_back() {
            Some((&pb, prev)) if Node::empty(*prev).end(pb) == base => *prev += pages,
            _ => {
                self.empties.insert(base, pages);
            }
        }
        Ok(old)
    }

    /// Coverage, ordering, coalescing and index invariants.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let mut at = self.start;
        let mut prev_empty = false;
        for (b, n) in self.iter() {
            if b != at {
                return Err("gap or overlap between nodes");
            }
            if n.pages == 0 {
                return Err("zero-length node");
            }
            let empty = n.kind == NodeKind::Empty;
            if empty && prev_empty {
                return Err("adjacent empty nodes not coalesced");
            }
            prev_empty = empty;
            at = n.end(b);
        }
        if at != self.end {
            return Err("half not fully covered");
        }
        if self.nodes.values().any(|n| n.kind == NodeKind::Empty) {
            return Err("empty node in the node map");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// `cut` and `set_kind` change nodes in place: coverage and the free
    /// space stay as they were.
    #[test]
    fn cut_and_set_kind_in_place() {
        let start = 0x1000_0000;
        let mut t = NodeTree::new(start, start + 64 * PAGE_SIZE);
        let a = NodeKind::Reserved;
        t.carve(start + 4 * PAGE_SIZE, 10, a);
        let empties = t.empties.clone();
        assert_eq!(t.cut(start + 4 * PAGE_SIZE, 3, NodeKind::Reserved), Ok(()));
        assert_eq!(
            t.lookup(start + 4 * PAGE_SIZE).map(|(_, n)| n.pages),
            Some(3)
        );
        assert_eq!(
            t.lookup(start + 9 * PAGE_SIZE),
            Some((start + 7 * PAGE_SIZE, Node { pages: 7, kind: a }))
        );
        assert_eq!(t.empties, empties);
        t.check_invariants().unwrap();
        for bad in [0, 7, 8] {
            assert!(t.cut(start + 7 * PAGE_SIZE, bad, a).is_err(), "{bad}");
        }
        assert_eq!(t.cut(start, 1, a), Err(VmError::NotAllocated));
        let mapped = NodeKind::Mapped {
            desc: DescId::test(3),
            flags: MemFlags::READ,
        };
        assert_eq!(t.set_kind(start + 7 * PAGE_SIZE, mapped), Ok(()));
        assert_eq!(
            t.lookup(start + 8 * PAGE_SIZE).map(|(_, n)| n.kind),
            Some(mapped)
        );
        assert_eq!(t.set_kind(start, mapped), Err(VmError::NotAllocated));
        assert!(t.set_kind(start + 7 * PAGE_SIZE, NodeKind::Empty).is_err());
        t.check_invariants().unwrap();
    }

    use super::*;

    const S: u64 = 0x1000_0000;
    fn tree() -> NodeTree {
        NodeTree::new(S, S + 64 * PAGE_SIZE)
    }
    fn mapped() -> NodeKind {
        NodeKind::Mapped {
            desc: DescId::test(1),
            flags: MemFlags::READ,
        }
    }

    #[test]
    fn split_middle_and_coalesce() {
        let mut t = tree();
        let b = S + 10 * PAGE_SIZE;
        t.check_fixed(b, 4, false).unwrap();
        t.carve(b, 4, mapped());
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup(b + 4 * PAGE_SIZE - 1).unwrap().0, b);
        assert_eq!(t.lookup(b - 1).unwrap().1.kind, NodeKind::Empty);
        t.check_invariants().unwrap();
        t.release(b).unwrap();
        assert_eq!(t.len(), 1);
        t.check_invariants().unwrap();
    }

    /// Lowest-first allocation carves in place; frees in either order merge
    /// with the free neighbours on both sides.
    #[test]
    fn carve_from_start_and_release_both_ways() {
        for reverse in [false, true] {
            let mut t = tree();
            let mut bases = Vec::new();
            for pages in [1, 3, 1, 2] {
                let b = t.find_free(pages).unwrap();
                t.carve(b, pages, mapped());
                t.check_invariants().unwrap();
                bases.push(b);
            }
            assert_eq!(
                bases,
                [S, S + PAGE_SIZE, S + 4 * PAGE_SIZE, S + 5 * PAGE_SIZE]
            );
            assert_eq!(t.len(), 5);
            // Free the second, then the rest: holes open, then close again.
            t.release(bases[1]).unwrap();
            assert_eq!(t.find_free(3), Some(bases[1]));
            assert_eq!(t.find_free(4), Some(S + 7 * PAGE_SIZE));
            let order: Vec<_> = if reverse {
                [3, 2, 0].map(|i| bases[i]).to_vec()
            } else {
                [0, 2, 3].map(|i| bases[i]).to_vec()
            };
            for b in order {
                t.release(b).unwrap();
                t.check_invariants().unwrap();
            }
            assert_eq!(t.len(), 1);
            assert_eq!(t.find_free(64), Some(S));
        }
    }

    #[test]
    fn fixed_range_checked_whole() {
        let mut t = tree();
        t.carve(S + 8 * PAGE_SIZE, 1, mapped());
        assert_eq!(t.check_fixed(S, 9, false), Err(VmError::Overlap));
        assert_eq!(
            t.check_fixed(S + 60 * PAGE_SIZE, 5, false),
            Err(VmError::OutOfRange)
        );
        assert_eq!(
            t.check_fixed(S - PAGE_SIZE, 1, false),
            Err(VmError::OutOfRange)
        );
        assert!(t.check_fixed(S, 8, false).is_ok());
    }

    #[test]
    fn reserved_carving_keeps_the_rest() {
        let mut t = tree();
        t.carve(S, 16, NodeKind::Reserved);
        assert_eq!(t.find_free(1), Some(S + 16 * PAGE_SIZE));
        assert_eq!(
            t.check_fixed(S + 4 * PAGE_SIZE, 2, false),
            Err(VmError::Overlap)
        );
        t.check_fixed(S + 4 * PAGE_SIZE, 2, true).unwrap();
        t.carve(S + 4 * PAGE_SIZE, 2, mapped());
        let kinds: Vec<_> = t.iter().map(|(b, n)| (b, n.pages, n.kind)).collect();
        assert_eq!(kinds[0], (S, 4, NodeKind::Reserved));
        assert_eq!(kinds[2], (S + 6 * PAGE_SIZE, 10, NodeKind::Reserved));
        t.check_invariants().unwrap();
    }
}
