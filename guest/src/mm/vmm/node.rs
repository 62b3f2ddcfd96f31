//! The nodes of one half of an address space (Möbius `vm_node_t`).
//!
//! A [`NodeTree`] covers its half completely with disjoint nodes that are
//! empty, reserved or mapped. It is an `alloc::collections::BTreeMap` keyed by
//! base address (a B-tree: balanced, O(log n), iterative; fixes B1), plus an
//! index of the empty nodes so that lowest-first placement only looks at free
//! ranges. Empty nodes are split on allocation and coalesced on free (B2);
//! fixed placement checks the whole range (B3).
use alloc::collections::{BTreeMap, BTreeSet};
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
}

/// The nodes of one half: `[start, end)`, always fully covered.
#[derive(Debug, Clone)]
pub struct NodeTree {
    nodes: BTreeMap<VirtAddr, Node>,
    empties: BTreeSet<VirtAddr>,
    start: VirtAddr,
    end: VirtAddr,
}

impl NodeTree {
    /// One empty node covering `[start, end)`.
    pub fn new(start: VirtAddr, end: VirtAddr) -> Self {
        let mut t = NodeTree {
            nodes: BTreeMap::new(),
            empties: BTreeSet::new(),
            start,
            end,
        };
        t.insert(
            start,
            Node {
                pages: (end - start) / PAGE_SIZE,
                kind: NodeKind::Empty,
            },
        );
        t
    }

    pub fn start(&self) -> VirtAddr {
        self.start
    }

    pub fn end(&self) -> VirtAddr {
        self.end
    }

    /// Nodes in address order.
    pub fn iter(&self) -> impl Iterator<Item = (VirtAddr, &Node)> {
        self.nodes.iter().map(|(b, n)| (*b, n))
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Levels of the B-tree a lookup visits, worst case for the node count
    /// (leaves hold at least 5 keys, inner nodes at least 6 children).
    pub fn depth(&self) -> u64 {
        let (mut depth, mut reach) = (1u64, 11usize);
        while reach < self.nodes.len() {
            reach = reach.saturating_mul(6);
            depth += 1;
        }
        depth
    }

    /// The node containing `addr` (`VmmLookupNode`), with its base.
    pub fn lookup(&self, addr: VirtAddr) -> Option<(VirtAddr, &Node)> {
        let (base, node) = self.nodes.range(..=addr).next_back()?;
        (addr < node.end(*base)).then_some((*base, node))
    }

    fn insert(&mut self, base: VirtAddr, node: Node) {
        if node.kind == NodeKind::Empty {
            self.empties.insert(base);
        }
        self.nodes.insert(base, node);
    }

    fn remove(&mut self, base: VirtAddr) -> Node {
        let node = self.nodes.remove(&base).expect("node exists");
        if node.kind == NodeKind::Empty {
            self.empties.remove(&base);
        }
        node
    }

    /// Lowest empty node with room for `pages` (`VmmFindEmptyNode`, whole
    /// range inside this half).
    pub fn find_free(&self, pages: u64) -> Option<VirtAddr> {
        self.empties
            .iter()
            .copied()
            .find(|b| self.nodes[b].pages >= pages)
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
        let first = self
            .lookup(base)
            .map(|(b, _)| b)
            .ok_or(VmError::OutOfRange)?;
        for (_, node) in self.nodes.range(first..end) {
            match node.kind {
                NodeKind::Empty => {}
                NodeKind::Reserved if carve_reserved => {}
                _ => return Err(VmError::Overlap),
            }
        }
        Ok(())
    }

    /// Put a node of `kind` at `[base, base + pages)`, splitting the nodes it
    /// overlaps; their outside parts keep their kind. Call `check_fixed` first.
    pub fn carve(&mut self, base: VirtAddr, pages: u64, kind: NodeKind) {
        let end = base + pages * PAGE_SIZE;
        let first = self.lookup(base).expect("checked").0;
        let covered: Vec<VirtAddr> = self.nodes.range(first..end).map(|(b, _)| *b).collect();
        for b in covered {
            let old = self.remove(b);
            let old_end = old.end(b);
            if b < base {
                self.insert(
                    b,
                    Node {
                        pages: (base - b) / PAGE_SIZE,
                        kind: old.kind,
                    },
                );
            }
            if old_end > end {
                self.insert(
                    end,
                    Node {
                        pages: (old_end - end) / PAGE_SIZE,
                        kind: old.kind,
                    },
                );
            }
        }
        self.insert(base, Node { pages, kind });
    }

    /// Turn the node at `base` back into free space, merging it with empty
    /// neighbours. Returns the old node.
    pub fn release(&mut self, base: VirtAddr) -> Node {
        let old = self.remove(base);
        let (mut start, mut end) = (base, old.end(base));
        if let Some((&pb, prev)) = self.nodes.range(..base).next_back() {
            if prev.kind == NodeKind::Empty {
                start = pb;
                self.remove(pb);
            }
        }
        if let Some(next) = self.nodes.get(&end).copied() {
            if next.kind == NodeKind::Empty {
                self.remove(end);
                end = next.end(end);
            }
        }
        self.insert(
            start,
            Node {
                pages: (end - start) / PAGE_SIZE,
                kind: NodeKind::Empty,
            },
        );
        old
    }

    /// Coverage, ordering, coalescing and index invariants.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let mut at = self.start;
        let mut prev_empty = false;
        for (&b, n) in &self.nodes {
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
            if empty != self.empties.contains(&b) {
                return Err("empty index out of date");
            }
            prev_empty = empty;
            at = n.end(b);
        }
        if at != self.end || self.empties.len() > self.nodes.len() {
            return Err("half not fully covered");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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
        t.release(b);
        assert_eq!(t.len(), 1);
        t.check_invariants().unwrap();
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
