//! Model-based property test: long random sequences of alloc, free, reserve,
//! share, open, map-shared, close, unexport, touch (read/write, user/kernel),
//! callback areas, fork (copy-on-write) and exit against a simple reference
//! model. After every step:
//! no overlap and the whole space covered (node tree invariants), nodes equal
//! the model's, reference counts right, frames conserved; at the end,
//! tearing everything down gives every frame and page table back.
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use mobius_guest::mm::paging::PAGE_SIZE;
use mobius_guest::mm::vmm::*;
use proptest::prelude::*;

const P: u64 = PAGE_SIZE;
const NAMES: [&str; 3] = ["fb", "buf", "log"];
/// Fixed addresses are picked in a small window so that they collide.
const WINDOW: u64 = 48;

#[derive(Debug, Clone)]
enum Op {
    Alloc {
        space: usize,
        pages: u64,
        fixed: Option<u64>,
        user: bool,
        write: bool,
        callback: bool,
    },
    Reserve {
        space: usize,
        pages: u64,
        fixed: Option<u64>,
    },
    Free {
        space: usize,
        pick: usize,
        interior: bool,
    },
    Share {
        space: usize,
        pick: usize,
        name: usize,
    },
    Open {
        name: usize,
    },
    MapShared {
        space: usize,
        handle: usize,
        user: bool,
        write: bool,
    },
    Close {
        handle: usize,
    },
    Unexport {
        name: usize,
    },
    Touch {
        space: usize,
        pick: usize,
        page: u64,
        write: bool,
        user: bool,
    },
    ZeroSome,
    /// Space `into` (1 or 2) exits and becomes a fork of the other one.
    Fork {
        into: usize,
    },
    /// User space 1 or 2 exits: every area freed, the space destroyed and
    /// created again empty.
    Exit {
        space: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let space = 0..3usize;
    let fixed = prop::option::of(0..WINDOW);
    prop_oneof![
        4 => (space.clone(), 1..6u64, fixed.clone(), any::<bool>(), any::<bool>(), prop::bool::weighted(0.2))
            .prop_map(|(space, pages, fixed, user, write, callback)| Op::Alloc { space, pages, fixed, user, write, callback }),
        1 => (space.clone(), 1..8u64, fixed).prop_map(|(space, pages, fixed)| Op::Reserve { space, pages, fixed }),
        3 => (space.clone(), any::<usize>(), prop::bool::weighted(0.1))
            .prop_map(|(space, pick, interior)| Op::Free { space, pick, interior }),
        1 => (space.clone(), any::<usize>(), 0..3usize).prop_map(|(space, pick, name)| Op::Share { space, pick, name }),
        1 => (0..3usize).prop_map(|name| Op::Open { name }),
        1 => (space.clone(), any::<usize>(), any::<bool>(), any::<bool>())
            .prop_map(|(space, handle, user, write)| Op::MapShared { space, handle, user, write }),
        1 => any::<usize>().prop_map(|handle| Op::Close { handle }),
        1 => (0..3usize).prop_map(|name| Op::Unexport { name }),
        6 => (space, any::<usize>(), 0..8u64, any::<bool>(), any::<bool>())
            .prop_map(|(space, pick, page, write, user)| Op::Touch { space, pick, page, write, user }),
        1 => Just(Op::ZeroSome),
        1 => (1..3usize).prop_map(|into| Op::Fork { into }),
        1 => (1..3usize).prop_map(|space| Op::Exit { space }),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MKind {
    Reserved,
    Mapped { desc: DescId, flags: MemFlags },
}

/// One half of one space in the model: non-empty nodes by base.
type MHalf = BTreeMap<u64, (u64, MKind)>;

#[derive(Default)]
struct Model {
    /// User halves per space, and the shared kernel half.
    user: Vec<MHalf>,
    kernel: MHalf,
    /// Last byte written to page 0.. of each area.
    values: BTreeMap<DescId, BTreeMap<u64, u8>>,
    exports: BTreeMap<&'static str, DescId>,
    handles: Vec<ShareHandle>,
    /// CALLBACK areas (a fork shares them rather than copy them).
    callbacks: std::collections::BTreeSet<DescId>,
}

fn half_bounds(user: bool) -> (u64, u64) {
    if user {
        (USER_START, USER_END)
    } else {
        (KERNEL_START, KERNEL_END)
    }
}

impl Model {
    fn half(&mut self, space: usize, user: bool) -> &mut MHalf {
        if user {
            &mut self.user[space]
        } else {
            &mut self.kernel
        }
    }

    /// Lowest gap of `pages` in a half.
    fn find_gap(half: &MHalf, user: bool, pages: u64) -> Option<u64> {
        let (start, end) = half_bounds(user);
        let mut at = start;
        for (b, (n, _)) in half {
            if b - at >= pages * P {
                return Some(at);
            }
            at = b + n * P;
        }
        (end - at >= pages * P).then_some(at)
    }

    /// Nodes overlapping `[base, base + pages)`.
    fn overlapping(half: &MHalf, base: u64, pages: u64) -> Vec<(u64, u64, MKind)> {
        let end = base + pages * P;
        half.iter()
            .filter(|(b, (n, _))| **b < end && **b + *n * P > base)
            .map(|(b, (n, k))| (*b, *n, *k))
            .collect()
    }

    /// Expected result of placing a node; carves reserved nodes on success.
    fn place(
        &mut self,
        space: usize,
        user: bool,
        pages: u64,
        fixed: Option<u64>,
        reserve: bool,
    ) -> Result<u64, VmError> {
        let half = self.half(space, user);
        let Some(base) = fixed else {
            return Self::find_gap(half, user, pages).ok_or(VmError::AddressSpaceExhausted);
        };
        let over = Self::overlapping(half, base, pages);
        if over
            .iter()
            .any(|(_, _, k)| reserve || *k != MKind::Reserved)
        {
            return Err(VmError::Overlap);
        }
        let end = base + pages * P;
        for (b, n, k) in over {
            half.remove(&b);
            if b < base {
                half.insert(b, ((base - b) / P, k));
            }
            if b + n * P > end {
                half.insert(end, ((b + n * P - end) / P, k));
            }
        }
        Ok(base)
    }

    /// Mapped or reserved nodes of a space, both halves, for picking.
    fn nodes(&self, space: usize) -> Vec<(u64, u64, MKind)> {
        self.user[space]
            .iter()
            .chain(self.kernel.iter())
            .map(|(b, (n, k))| (*b, *n, *k))
            .collect()
    }

    fn refs(&self, desc: DescId) -> usize {
        let nodes = self.user.iter().chain(std::iter::once(&self.kernel));
        let mapped = nodes
            .flat_map(|h| h.values())
            .filter(|(_, k)| matches!(k, MKind::Mapped { desc: d, .. } if *d == desc))
            .count();
        mapped
            + self.exports.values().filter(|d| **d == desc).count()
            + self.handles.iter().filter(|h| h.desc() == desc).count()
    }

    fn forget_if_dead(&mut self, desc: DescId) {
        if self.refs(desc) == 0 {
            self.values.remove(&desc);
        }
    }
}

fn callback() -> Arc<CallbackFn> {
    Arc::new(|m: &mut dyn CallbackMapper, f: &CallbackFault| m.map_new_frame(f.write).is_ok())
}

fn flags_of(user: bool, write: bool) -> MemFlags {
    let mut f = MemFlags::READ;
    if user {
        f |= MemFlags::USER;
    }
    if write {
        f |= MemFlags::WRITE;
    }
    f
}

struct World {
    vmm: TestVmm,
    /// The last step was refused (and so must have changed nothing).
    failed: bool,
    spaces: Vec<SpaceId>,
    model: Model,
    step: u8,
}

impl World {
    fn new() -> World {
        let vmm = setup(1024);
        let s1 = vmm.lock().create_space().unwrap();
        let s2 = vmm.lock().create_space().unwrap();
        let model = Model {
            user: vec![MHalf::new(); 3],
            ..Model::default()
        };
        World {
            vmm,
            failed: false,
            spaces: vec![KERNEL_SPACE, s1, s2],
            model,
            step: 0,
        }
    }

    fn failed_as<T: PartialEq + std::fmt::Debug>(&mut self, got: T, want: T) {
        assert_eq!(got, want);
        self.failed = true;
    }

    fn fixed_addr(user: bool, k: u64) -> u64 {
        half_bounds(user).0 + k * P
    }

    fn apply(&mut self, op: &Op) {
        self.step = self.step.wrapping_add(1);
        match *op {
            Op::Alloc {
                space,
                pages,
                fixed,
                user,
                write,
                callback: cb,
            } => {
                let flags = flags_of(user, write);
                let fixed = fixed.map(|k| Self::fixed_addr(user, k));
                let expect = self.model.place(space, user, pages, fixed, false);
                let mut vm = self.vmm.lock();
                let got = if cb {
                    vm.alloc_callback(
                        self.spaces[space],
                        pages,
                        fixed.unwrap_or(0),
                        flags,
                        callback(),
                    )
                } else {
                    vm.alloc(self.spaces[space], pages, fixed.unwrap_or(0), flags)
                };
                assert_eq!(got, expect, "{op:?}");
                self.failed |= got.is_err();
                if let Ok(base) = got {
                    let Some(NodeInfo {
                        kind: NodeKind::Mapped { desc, .. },
                        ..
                    }) = vm.lookup(self.spaces[space], base)
                    else {
                        panic!("no node at {base:#x}")
                    };
                    self.model
                        .half(space, user)
                        .insert(base, (pages, MKind::Mapped { desc, flags }));
                    self.model.values.insert(desc, BTreeMap::new());
                    if cb {
                        self.model.callbacks.insert(desc);
                    } else {
                        self.model.callbacks.remove(&desc);
                    }
                }
            }
            Op::Reserve {
                space,
                pages,
                fixed,
            } => {
                let fixed = fixed.map(|k| Self::fixed_addr(true, k));
                let expect = self.model.place(space, true, pages, fixed, true);
                let got = self
                    .vmm
                    .lock()
                    .reserve(self.spaces[space], pages, fixed.unwrap_or(0));
                assert_eq!(got, expect, "{op:?}");
                self.failed |= got.is_err();
                if let Ok(base) = got {
                    self.model.user[space].insert(base, (pages, MKind::Reserved));
                }
            }
            Op::Free {
                space,
                pick,
                interior,
            } => {
                let nodes = self.model.nodes(space);
                if nodes.is_empty() {
                    let got = self.vmm.lock().free(self.spaces[space], USER_START);
                    self.failed_as(got, Err(VmError::NotAllocated));
                    return;
                }
                let (base, pages, kind) = nodes[pick % nodes.len()];
                if interior && pages > 1 {
                    let got = self.vmm.lock().free(self.spaces[space], base + P);
                    self.failed_as(got, Err(VmError::NotBase));
                    return;
                }
                self.vmm.lock().free(self.spaces[space], base).unwrap();
                let user = base < USER_END;
                self.model.half(space, user).remove(&base);
                if let MKind::Mapped { desc, .. } = kind {
                    self.model.forget_if_dead(desc);
                }
            }
            Op::Share { space, pick, name } => {
                let nodes = self.model.nodes(space);
                let Some(&(base, _, kind)) = nodes.get(pick % nodes.len().max(1)) else {
                    return;
                };
                let got = self.vmm.lock().share(self.spaces[space], base, NAMES[name]);
                match kind {
                    MKind::Reserved => self.failed_as(got, Err(VmError::NotAllocated)),
                    MKind::Mapped { .. } if self.model.exports.contains_key(NAMES[name]) => {
                        self.failed_as(got, Err(VmError::NameExists))
                    }
                    MKind::Mapped { desc, .. } => {
                        let h = got.unwrap();
                        assert_eq!(h.desc(), desc);
                        self.model.exports.insert(NAMES[name], desc);
                        self.model.handles.push(h);
                    }
                }
            }
            Op::Open { name } => {
                let got = self.vmm.lock().open_shared(NAMES[name]);
                match self.model.exports.get(NAMES[name]) {
                    None => self.failed_as(got, Err(VmError::UnknownName)),
                    Some(d) => {
                        let h = got.unwrap();
                        assert_eq!(h.desc(), *d);
                        self.model.handles.push(h);
                    }
                }
            }
            Op::MapShared {
                space,
                handle,
                user,
                write,
            } => {
                if self.model.handles.is_empty() {
                    return;
                }
                let h = &self.model.handles[handle % self.model.handles.len()];
                let desc = h.desc();
                let (pages, creator) = self.creator(desc);
                let flags = flags_of(user, write);
                let widens =
                    (write && !creator.contains(MemFlags::WRITE)) || (user && !creator.is_user());
                let got = self.vmm.lock().map_shared(self.spaces[space], h, 0, flags);
                if widens {
                    self.failed_as(got, Err(VmError::PermissionDenied));
                    return;
                }
                let expect = self.model.place(space, user, pages, None, false);
                assert_eq!(got, expect, "{op:?}");
                self.failed |= got.is_err();
                if let Ok(base) = got {
                    self.model
                        .half(space, user)
                        .insert(base, (pages, MKind::Mapped { desc, flags }));
                }
            }
            Op::Close { handle } => {
                if self.model.handles.is_empty() {
                    return;
                }
                let h = self.model.handles.remove(handle % self.model.handles.len());
                let desc = h.desc();
                self.vmm.lock().close_handle(h).unwrap();
                self.model.forget_if_dead(desc);
            }
            Op::Unexport { name } => {
                let got = self.vmm.lock().unexport(NAMES[name]);
                match self.model.exports.remove(NAMES[name]) {
                    None => self.failed_as(got, Err(VmError::UnknownName)),
                    Some(desc) => {
                        got.unwrap();
                        self.model.forget_if_dead(desc);
                    }
                }
            }
            Op::Touch {
                space,
                pick,
                page,
                write: w,
                user,
            } => self.touch(space, pick, page, w, user),
            Op::ZeroSome => {
                self.vmm.lock().zero_some(8);
            }
            Op::Exit { space } => self.exit(space),
            Op::Fork { into } => self.fork(into),
        }
    }

    /// Free every user-half node of `space`, destroy it, create it anew.
    fn exit(&mut self, space: usize) {
        let nodes: Vec<(u64, u64, MKind)> = self.model.user[space]
            .iter()
            .map(|(b, (n, k))| (*b, *n, *k))
            .collect();
        for (base, _, kind) in nodes {
            self.vmm.lock().free(self.spaces[space], base).unwrap();
            self.model.user[space].remove(&base);
            if let MKind::Mapped { desc, .. } = kind {
                self.model.forget_if_dead(desc);
            }
        }
        let mut vm = self.vmm.lock();
        vm.destroy_space(self.spaces[space]).unwrap();
        self.spaces[space] = vm.create_space().unwrap();
    }

    /// Space `into` exits and becomes a copy-on-write fork of the other
    /// user space: private areas get descriptors of their own holding the
    /// same contents; shared ones (exported, or mapped more than once) are
    /// the same descriptor.
    fn fork(&mut self, into: usize) {
        self.exit(into);
        let from = 3 - into;
        let shared: Vec<DescId> = self.model.user[from]
            .values()
            .filter_map(|(_, k)| match k {
                MKind::Mapped { desc, .. }
                    if self.model.refs(*desc) > 1 || self.model.callbacks.contains(desc) =>
                {
                    Some(*desc)
                }
                _ => None,
            })
            .collect();
        let child = {
            let mut vm = self.vmm.lock();
            vm.destroy_space(self.spaces[into]).unwrap();
            vm.fork_space(self.spaces[from]).unwrap()
        };
        self.spaces[into] = child;
        let nodes: Vec<(u64, u64, MKind)> = self.model.user[from]
            .iter()
            .map(|(b, (n, k))| (*b, *n, *k))
            .collect();
        for (base, pages, kind) in nodes {
            let kind = match kind {
                MKind::Reserved => MKind::Reserved,
                MKind::Mapped { desc, flags } => {
                    let mine = match self.vmm.lock().lookup(child, base) {
                        Some(NodeInfo {
                            kind: NodeKind::Mapped { desc, .. },
                            ..
                        }) => desc,
                        other => panic!("fork lost the node at {base:#x}: {other:?}"),
                    };
                    if shared.contains(&desc) {
                        assert_eq!(mine, desc, "a shared area must stay shared");
                    } else {
                        assert_ne!(mine, desc, "a private area must be copied");
                        let values = self.model.values[&desc].clone();
                        self.model.values.insert(mine, values);
                    }
                    MKind::Mapped { desc: mine, flags }
                }
            };
            self.model.user[into].insert(base, (pages, kind));
        }
    }

    /// Pages and creator flags of a live descriptor.
    fn creator(&self, desc: DescId) -> (u64, MemFlags) {
        let vm = self.vmm.lock();
        let d = vm.area(desc).expect("live desc");
        (d.pages, d.flags)
    }

    fn touch(&mut self, space: usize, pick: usize, page: u64, w: bool, user: bool) {
        let nodes: Vec<_> = self
            .model
            .nodes(space)
            .into_iter()
            .filter(|n| matches!(n.2, MKind::Mapped { .. }))
            .collect();
        let Some(&(base, pages, MKind::Mapped { desc, flags })) =
            nodes.get(pick % nodes.len().max(1))
        else {
            return;
        };
        let page = page % pages;
        let addr = base + page * P;
        let protected = (user && !flags.is_user()) || (w && !flags.contains(MemFlags::WRITE));
        let free_before = free_frames(&self.vmm);
        let sid = self.spaces[space];
        if w {
            let got = write(&self.vmm, sid, addr, &[self.step], user);
            if protected {
                self.failed_as(got, Err(FaultOutcome::Protection));
            } else {
                got.unwrap();
                self.model
                    .values
                    .get_mut(&desc)
                    .unwrap()
                    .insert(page, self.step);
            }
        } else {
            let got = read(&self.vmm, sid, addr, 1, user);
            if protected {
                self.failed_as(got, Err(FaultOutcome::Protection));
            } else {
                let want = self.model.values[&desc].get(&page).copied().unwrap_or(0);
                assert_eq!(got.unwrap(), vec![want], "contents of {addr:#x}");
            }
        }
        if protected {
            assert_eq!(
                free_frames(&self.vmm),
                free_before,
                "protection fault allocated"
            );
        }
    }

    fn check(&self) {
        let vm = self.vmm.lock();
        let mut handles = BTreeMap::new();
        for h in &self.model.handles {
            *handles.entry(h.desc()).or_insert(0) += 1;
        }
        vm.check_invariants(&handles).expect("invariants");
        vm.mmu().check_no_empty_tables().expect("page tables");
        let state = vm.state();
        let real = |nodes: &NodeList| -> MHalf {
            nodes
                .iter()
                .filter(|(_, n)| n.kind != NodeKind::Empty)
                .map(|(b, n)| {
                    let k = match n.kind {
                        NodeKind::Reserved => MKind::Reserved,
                        NodeKind::Mapped { desc, flags } => MKind::Mapped { desc, flags },
                        NodeKind::Empty => unreachable!(),
                    };
                    (*b, (n.pages, k))
                })
                .collect()
        };
        assert_eq!(real(&state.kernel), self.model.kernel);
        for (i, sid) in self.spaces.iter().enumerate() {
            let (_, _, nodes) = state.spaces.iter().find(|s| s.0 == *sid).unwrap();
            assert_eq!(real(nodes), self.model.user[i], "space {i}");
        }
        assert_eq!(vm.node_stats().areas as usize, self.model.values.len());
        let f = vm.frames().stats();
        assert_eq!(f.free + f.used, f.total);
    }

    /// Give everything back and check that all frames and tables return.
    fn teardown(mut self, tables_at_start: usize, free_at_start: u64) {
        for h in std::mem::take(&mut self.model.handles) {
            self.vmm.lock().close_handle(h).unwrap();
        }
        for name in NAMES {
            let _ = self.vmm.lock().unexport(name);
        }
        for space in 0..3 {
            for (base, _, _) in self.model.nodes(space) {
                self.vmm.lock().free(self.spaces[space], base).unwrap();
                let user = base < USER_END;
                self.model.half(space, user).remove(&base);
            }
        }
        let mut vm = self.vmm.lock();
        assert_eq!(vm.node_stats().areas, 0);
        vm.destroy_space(self.spaces[1]).unwrap();
        vm.destroy_space(self.spaces[2]).unwrap();
        // Two roots gone; the kernel half's shared level-3 table may have appeared.
        let tables = vm.mmu().live_tables();
        assert!(
            tables + 2 <= tables_at_start + 1,
            "tables {tables} vs {tables_at_start}"
        );
        let free = vm.frames().stats().free;
        assert!(
            free + 1 >= free_at_start + 2,
            "frames {free} vs {free_at_start}"
        );
        vm.check_invariants(&BTreeMap::new()).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn vmm_matches_model(ops in prop::collection::vec(op(), 1..120)) {
        let mut world = World::new();
        let tables = world.vmm.lock().mmu().live_tables();
        let free = free_frames(&world.vmm);
        for op in &ops {
            let before = world.vmm.lock().state();
            world.failed = false;
            world.apply(op);
            if world.failed {
                prop_assert_eq!(&world.vmm.lock().state(), &before, "refused {:?} changed state", op);
            }
            world.check();
        }
        world.teardown(tables, free);
    }
}
