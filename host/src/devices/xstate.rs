//! The extended-state port ([`mobius_shared::ports::XSTATE`]): the guest
//! kernel asks the host to save and load a thread's whole x87/SSE/AVX/
//! AVX-512 state with `KVM_GET_XSAVE`/`KVM_SET_XSAVE`.
//!
//! Why the host: on kvm_pvm, ring-0 `xsave` kills the VM and ring 3 runs
//! with the host's XCR0, so programs use AVX and AVX-512 whatever the
//! guest's CPUID and CR4 say; `fxsave` keeps only x87/SSE, and two
//! preempted processes would see each other's upper vector registers. The
//! host holds the state of every guest thread in a slot: at most
//! [`XSTATE_SLOTS`] of 4 KiB (`struct kvm_xsave`), 4 MiB in all, whatever
//! the guest asks. Bad requests (slot out of range, unknown operation) are
//! refused and counted; the vCPU's state is then left as it was.
use kvm_bindings::kvm_xsave;
use kvm_ioctls::VcpuFd;
use mobius_shared::ports::{
    xstate_parts, XSTATE_COPY, XSTATE_FREE, XSTATE_LOAD, XSTATE_RESET, XSTATE_SAVE, XSTATE_SLOTS,
};

/// Saved thread states by slot.
#[derive(Default)]
pub struct XstateSlots {
    slots: Vec<Option<Box<kvm_xsave>>>,
    /// The state the vCPU was created with (what a new program starts with).
    reset: Option<Box<kvm_xsave>>,
}

/// Why a request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XstateError {
    #[error("extended-state slot {0} out of range (the host keeps {XSTATE_SLOTS})")]
    BadSlot(u32),
    #[error("unknown extended-state operation {0}")]
    BadOp(u32),
    #[error("KVM refused the extended state: {0}")]
    Kvm(String),
}

fn check(slot: u32) -> Result<usize, XstateError> {
    if slot < XSTATE_SLOTS {
        Ok(slot as usize)
    } else {
        Err(XstateError::BadSlot(slot))
    }
}

impl XstateSlots {
    /// Remember the vCPU's state as the reset state (call before it runs).
    pub fn capture_reset(&mut self, vcpu: &VcpuFd) {
        self.reset = vcpu.get_xsave().ok().map(Box::new);
    }

    fn slot_mut(&mut self, i: usize) -> &mut Option<Box<kvm_xsave>> {
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        &mut self.slots[i]
    }

    /// Carry out the port write `value` on `vcpu`.
    pub fn handle(&mut self, vcpu: &VcpuFd, value: u32) -> Result<(), XstateError> {
        let (op, a, b) = xstate_parts(value);
        let kvm = |e: kvm_ioctls::Error| XstateError::Kvm(e.to_string());
        match op {
            XSTATE_SAVE => {
                let i = check(a)?;
                let state = vcpu.get_xsave().map_err(kvm)?;
                *self.slot_mut(i) = Some(Box::new(state));
            }
            XSTATE_LOAD => {
                let i = check(a)?;
                let state = self
                    .slots
                    .get(i)
                    .and_then(Option::as_ref)
                    .or(self.reset.as_ref());
                if let Some(state) = state {
                    // SAFETY: a `kvm_xsave` KVM gave us for this vCPU (or
                    // its reset state): the size and layout KVM expects.
                    unsafe { vcpu.set_xsave(state) }.map_err(kvm)?;
                }
            }
            XSTATE_FREE => {
                let i = check(a)?;
                if let Some(s) = self.slots.get_mut(i) {
                    *s = None;
                }
            }
            XSTATE_COPY => {
                let (from, to) = (check(a)?, check(b)?);
                let copy = self.slots.get(from).and_then(Option::as_ref).map(|x| {
                    let mut c = Box::new(kvm_xsave::default());
                    c.region = x.region;
                    c
                });
                *self.slot_mut(to) = copy;
            }
            XSTATE_RESET => {
                if let Some(state) = &self.reset {
                    // SAFETY: as for LOAD.
                    unsafe { vcpu.set_xsave(state) }.map_err(kvm)?;
                }
            }
            other => return Err(XstateError::BadOp(other)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mobius_shared::ports::xstate_value;

    #[test]
    fn bad_requests_are_refused_without_growing() {
        let kvm = match kvm_ioctls::Kvm::new() {
            Ok(k) => k,
            Err(_) => return, // no /dev/kvm: nothing to check against
        };
        let vm = kvm.create_vm().expect("vm");
        let vcpu = vm.create_vcpu(0).expect("vcpu");
        let mut s = XstateSlots::default();
        s.capture_reset(&vcpu);
        assert_eq!(
            s.handle(&vcpu, xstate_value(XSTATE_SAVE, XSTATE_SLOTS, 0)),
            Err(XstateError::BadSlot(XSTATE_SLOTS))
        );
        assert_eq!(
            s.handle(&vcpu, xstate_value(9, 0, 0)),
            Err(XstateError::BadOp(9))
        );
        assert!(s.slots.is_empty());
        s.handle(&vcpu, xstate_value(XSTATE_SAVE, 3, 0))
            .expect("save");
        s.handle(&vcpu, xstate_value(XSTATE_COPY, 3, 5))
            .expect("copy");
        assert!(s.slots[5].is_some());
        s.handle(&vcpu, xstate_value(XSTATE_LOAD, 5, 0))
            .expect("load");
        s.handle(&vcpu, xstate_value(XSTATE_FREE, 5, 0))
            .expect("free");
        assert!(s.slots[5].is_none());
        // A never-saved slot loads the reset state.
        s.handle(&vcpu, xstate_value(XSTATE_LOAD, 7, 0))
            .expect("load reset");
        s.handle(&vcpu, xstate_value(XSTATE_RESET, 0, 0))
            .expect("reset");
    }
}
