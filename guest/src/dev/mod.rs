//! Devices the kernel drives. The virtio console carries statistics frames to
//! the host; without one, callers fall back to the serial console.

/// Send one encoded statistics frame over the virtio console. Returns `false`
/// when no virtio console is available, so the caller falls back to serial.
pub fn send_frame(_frame: &[u8]) -> bool {
    false
}
