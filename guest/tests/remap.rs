//! What `mremap`, `MAP_SHARED` and SysV shared memory ask of the VMM:
//! growing an area in place, moving it with its frames, shared areas that a
//! fork child maps instead of copying, and areas made unmapped for later
//! attachment (`create_shared`), whose frames go with the last reference.
mod common;

use std::collections::BTreeMap;

use common::*;
use mobius_guest::mm::paging::PAGE_SIZE;
use mobius_guest::mm::vmm::*;

const P: u64 = PAGE_SIZE;
const URW: MemFlags = MemFlags::USER
    .union(MemFlags::READ)
    .union(MemFlags::WRITE)
    .union(MemFlags::ZERO);

fn desc_of(vmm: &TestVmm, space: SpaceId, addr: u64) -> DescId {
    match vmm.lock().lookup(space, addr).expect("node").kind {
        NodeKind::Mapped { desc, .. } => desc,
        k => panic!("not mapped: {k:?}"),
    }
}

fn invariants(vmm: &TestVmm, handles: &BTreeMap<DescId, u32>) {
    vmm.lock().check_invariants(handles).expect("invariants");
}

/// Growing in place keeps the frames; the new pages are demand-zero.
#[test]
fn an_area_grows_in_place_keeping_its_pages() {
    let vmm = setup(128);
    let space = vmm.lock().create_space().unwrap();
    let a = vmm.lock().alloc(space, 2, 0, URW).unwrap();
    write(&vmm, space, a + P + 8, b"kept", true).unwrap();
    vmm.lock().remap(space, a, a, 5).unwrap();
    assert_eq!(read(&vmm, space, a + P + 8, 4, true).unwrap(), b"kept");
    assert_eq!(read(&vmm, space, a + 4 * P, 4, true).unwrap(), [0; 4]);
    assert_eq!(vmm.lock().lookup(space, a).unwrap().pages, 5);
    invariants(&vmm, &BTreeMap::new());
}

/// Growing into a neighbour fails and changes nothing; a move takes the
/// frames along (no copy, no new frame) and leaves the old range free.
#[test]
fn a_blocked_area_moves_with_its_frames() {
    let vmm = setup(128);
    let space = vmm.lock().create_space().unwrap();
    let a = vmm.lock().alloc(space, 2, 0, URW).unwrap();
    let _next = vmm.lock().alloc(space, 1, a + 2 * P, URW).unwrap();
    write(&vmm, space, a, b"moved", true).unwrap();
    let free = free_frames(&vmm);
    assert_eq!(vmm.lock().remap(space, a, a, 4), Err(VmError::Overlap));
    let to = vmm.lock().free_range(space, 4).unwrap();
    vmm.lock().remap(space, a, to, 4).unwrap();
    assert_eq!(read(&vmm, space, to, 5, true).unwrap(), b"moved");
    assert!(pte(&vmm, space, a).is_none(), "old page still mapped");
    assert!(matches!(
        vmm.lock().lookup(space, a).unwrap().kind,
        NodeKind::Empty
    ));
    assert_eq!(free_frames(&vmm), free);
    invariants(&vmm, &BTreeMap::new());
}

/// An area others map (a shared area) may move but not grow.
#[test]
fn a_shared_area_does_not_grow() {
    let vmm = setup(128);
    let space = vmm.lock().create_space().unwrap();
    let a = vmm.lock().alloc(space, 1, 0, URW).unwrap();
    let h = vmm.lock().share(space, a, "s").unwrap();
    let to = vmm.lock().free_range(space, 2).unwrap();
    assert_eq!(
        vmm.lock().remap(space, a, to, 2),
        Err(VmError::PermissionDenied)
    );
    vmm.lock().remap(space, a, to, 1).unwrap();
    vmm.lock().close_handle(h).unwrap();
    vmm.lock().unexport("s").unwrap();
}

/// A shared area is the same area in a fork child: a write on either side
/// is seen by the other.
#[test]
fn a_shared_area_stays_shared_across_fork() {
    let vmm = setup(128);
    let parent = vmm.lock().create_space().unwrap();
    let a = vmm.lock().alloc(parent, 1, 0, URW).unwrap();
    vmm.lock().mark_shared(parent, a).unwrap();
    write(&vmm, parent, a, b"one", true).unwrap();
    let child = vmm.lock().fork_space(parent).unwrap();
    write(&vmm, child, a, b"two", true).unwrap();
    assert_eq!(read(&vmm, parent, a, 3, true).unwrap(), b"two");
    assert_eq!(desc_of(&vmm, parent, a), desc_of(&vmm, child, a));
    vmm.lock().destroy_space(child).unwrap();
    invariants(&vmm, &BTreeMap::new());
}

/// A segment made with `create_shared` has frames only once mapped and
/// touched, is the same memory in every mapping, and gives its frames back
/// when the last mapping and the handle are gone.
#[test]
fn a_created_shared_area_frees_with_its_last_reference() {
    let vmm = setup(128);
    let free = free_frames(&vmm);
    let h = vmm.lock().create_shared(3, URW).unwrap();
    let s1 = vmm.lock().create_space().unwrap();
    let s2 = vmm.lock().create_space().unwrap();
    let free_spaces = free_frames(&vmm);
    let a = vmm.lock().map_shared(s1, &h, 0, URW).unwrap();
    let b = vmm.lock().map_shared(s2, &h, 0, URW).unwrap();
    assert_eq!(vmm.lock().handle_refs(&h), 3);
    write(&vmm, s1, a + 2 * P, b"seg", true).unwrap();
    assert_eq!(read(&vmm, s2, b + 2 * P, 3, true).unwrap(), b"seg");
    vmm.lock().free(s1, a).unwrap();
    vmm.lock().free(s2, b).unwrap();
    assert_eq!(vmm.lock().handle_refs(&h), 1);
    vmm.lock().close_handle(h).unwrap();
    vmm.lock().destroy_space(s1).unwrap();
    vmm.lock().destroy_space(s2).unwrap();
    assert!(free_frames(&vmm) >= free_spaces);
    assert_eq!(free_frames(&vmm), free);
    invariants(&vmm, &BTreeMap::new());
}
