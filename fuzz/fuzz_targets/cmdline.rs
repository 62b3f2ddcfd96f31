//! The kernel command line and the boot parameters block
//! (`mobius_shared::cmdline`, `mobius_shared::boot_params`).
//!
//! Input: byte 0 chooses the mode; with bit 0 set, the next 128 bytes are a
//! boot parameters block as the kernel would find it and the rest is the
//! command line; otherwise all the rest is the line. Checked:
//! - `words` cuts the line into subslices without separators;
//! - `BootOptions::parse` agrees with `get` (the last word of a key wins);
//! - the host's parse handed over in a block (`to_parsed`, `encode`) gives
//!   the kernel the options it would have parsed itself;
//! - any block `ParamsView` accepts decodes, encodes and decodes again to the
//!   same facts, and `from_view` with it never panics and takes the user's
//!   words only from the user's part of the line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mobius_shared::boot_params::{BootParams, ParamsView, LEN};
use mobius_shared::cmdline::{
    get, virtio_mmio_base, words, BootOptions, MAX_VIRTIO_DEVICES, RUN_ID, STATS_INTERVAL_MS,
    SUMMARY, TEST, TSC_KHZ, VIRTIO_MMIO_DEVICE, WORKLOAD,
};

/// Whether `part` lies inside `line` (a subslice, not a copy).
fn inside(line: &str, part: &str) -> bool {
    let (l, p) = (line.as_ptr() as usize, part.as_ptr() as usize);
    p >= l && p + part.len() <= l + line.len()
}

fn check_words(line: &str) {
    let mut n = 0;
    for (k, v) in words(line) {
        n += 1;
        // A bare key's value is an empty string of its own.
        assert!(inside(line, k), "{k:?} not in {line:?}");
        assert!(v.is_empty() || inside(line, v), "{v:?} not in {line:?}");
        assert!(k.bytes().all(|b| b > b' ' && b != b'='), "key {k:?}");
        assert!(v.bytes().all(|b| b > b' '), "value {v:?}");
        assert!(!k.is_empty() || !v.is_empty() || line.contains('='));
    }
    assert!(n <= line.len());
}

fn check_parse(line: &str) -> BootOptions<'_> {
    let o = BootOptions::parse(line);
    assert_eq!(o.workload, get(line, WORKLOAD));
    assert_eq!(o.test, get(line, TEST));
    let number = |key| get(line, key).and_then(|v| v.parse::<u64>().ok());
    assert_eq!(o.tsc_khz, number(TSC_KHZ));
    assert_eq!(o.stats_interval_ms, number(STATS_INTERVAL_MS));
    assert_eq!(o.run_id, number(RUN_ID));
    assert_eq!(o.summary, get(line, SUMMARY) == Some("1"));
    let virtio: Vec<u64> = words(line)
        .filter(|(k, _)| *k == VIRTIO_MMIO_DEVICE)
        .filter_map(|(_, v)| virtio_mmio_base(v))
        .take(MAX_VIRTIO_DEVICES)
        .collect();
    assert_eq!(o.virtio_devices(), &virtio[..]);
    o
}

/// The whole block read back through the view.
fn decode(view: &ParamsView<'_>) -> BootParams {
    let p = view.to_params();
    assert!(p.virtio_len <= MAX_VIRTIO_DEVICES);
    p
}

/// The host's handover: the user's words parsed on the host and carried in
/// the block give the kernel what its own parse of them would.
fn check_handover(user: &str, o: &BootOptions<'_>) {
    let Some(parsed) = o.to_parsed(user) else {
        return;
    };
    let line = format!("{user} tsc_khz=7 discard=1 virtio_mmio.device=4K@0xd0000000:5");
    let block = |options| BootParams {
        tsc_khz: 7,
        discard: true,
        console: true,
        xstate: false,
        stdin: false,
        user_cmdline_len: user.len() as u32,
        virtio: [0xd000_0000, 0, 0, 0],
        virtio_len: 1,
        options,
    };
    let with = block(Some(parsed)).encode();
    let without = block(None).encode();
    let view = ParamsView::new(&with).expect("the host's block is valid");
    assert_eq!(view.options(), Some(parsed));
    let a = BootOptions::from_view(&line, Some(view));
    let b = BootOptions::from_view(&line, ParamsView::new(&without));
    assert_eq!(a, b);
    assert_eq!(
        (a.workload, a.test, a.stats_interval_ms, a.run_id, a.summary),
        (o.workload, o.test, o.stats_interval_ms, o.run_id, o.summary)
    );
    assert_eq!((a.tsc_khz, a.discard), (Some(7), true));
    assert_eq!(a.virtio_devices(), &[0xd000_0000]);
}

fn check_block(block: &[u8; LEN], line: &str) {
    let Some(view) = ParamsView::new(block) else {
        return;
    };
    let p = decode(&view);
    let again = p.encode();
    let view2 = ParamsView::new(&again).expect("an encoded block is valid");
    assert_eq!(decode(&view2), p);
    let o = BootOptions::from_view(line, Some(view));
    assert!(o.virtio_len <= MAX_VIRTIO_DEVICES);
    if let Some(user) = line.get(..p.user_cmdline_len as usize) {
        assert_eq!(o.discard, p.discard);
        if p.tsc_khz != 0 {
            assert_eq!(o.tsc_khz, Some(p.tsc_khz));
        }
        for s in [o.workload, o.test].into_iter().flatten() {
            assert!(
                s.is_empty() || inside(user, s),
                "{s:?} outside the user's words {user:?}"
            );
        }
        assert_eq!(o.virtio_devices(), &p.virtio[..p.virtio_len]);
    } else {
        assert_eq!(o, BootOptions::parse(line));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (block, rest) = match rest.split_first_chunk::<LEN>() {
        Some((block, rest)) if mode & 1 != 0 => (Some(block), rest),
        _ => (None, rest),
    };
    let line = String::from_utf8_lossy(rest);
    check_words(&line);
    let o = check_parse(&line);
    check_handover(&line, &o);
    if let Some(block) = block {
        check_block(block, &line);
    }
});
