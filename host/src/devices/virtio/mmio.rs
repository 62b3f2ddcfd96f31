//! virtio-mmio register offsets and status bits (virtio 1.2 §4.2.2), from
//! `mobius_shared::virtio_mmio`, where the guest's drivers read them too.

pub use mobius_shared::virtio_mmio::*;
