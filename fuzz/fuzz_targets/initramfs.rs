//! The host's initramfs reader (`Initramfs::from_archive`, what
//! `--initrd` goes through) on arbitrary bytes, checked against the guest's
//! reader of the same format: the host never panics, and an archive it
//! accepts comes out of `finish` as one the guest accepts too, with the same
//! members (names, modes, data) in the same order. A file the host then adds
//! is what the guest finds at its path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mobius::boot::initramfs::Initramfs;
use mobius_guest::fs::cpio::{Archive, Entry};

/// What the guest reads: the members in order.
fn members<'a>(archive: &Archive<'a>) -> Vec<Entry<'a>> {
    archive.entries().collect()
}

/// The members of each newc archive in `data` (concatenated, each ended by
/// its trailer, as the host accepts them), as the guest reads each one.
fn each_archive(mut data: &[u8]) -> Vec<Entry<'_>> {
    let mut all = Vec::new();
    loop {
        let skip = data.iter().take_while(|&&b| b == 0).count();
        data = &data[skip..];
        if data.is_empty() {
            return all;
        }
        let Ok(archive) = Archive::new(data) else {
            return all;
        };
        all.extend(members(&archive));
        // The guest does not say where the trailer ends: find the next
        // header after it, as the host did.
        let Some(end) = trailer_end(data) else {
            return all;
        };
        data = &data[end..];
    }
}

/// Offset just past the first trailer member of a valid archive (its name,
/// padded to 4; the host takes the same).
fn trailer_end(data: &[u8]) -> Option<usize> {
    let mut pos = 0usize;
    loop {
        let header = data.get(pos..pos + 110)?;
        let field = |i: usize| {
            let digits = std::str::from_utf8(&header[6 + 8 * i..14 + 8 * i]).ok()?;
            usize::from_str_radix(digits, 16).ok()
        };
        let (filesize, namesize) = (field(6)?, field(11)?);
        let name_end = pos + 110 + namesize;
        let name = data.get(pos + 110..name_end)?;
        let next = (name_end.next_multiple_of(4) + filesize).next_multiple_of(4);
        if name == b"TRAILER!!!\0" {
            return Some(next.min(data.len()));
        }
        pos = next;
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut fs) = Initramfs::from_archive(data) else {
        return;
    };
    let added = fs
        .add_file("/fuzz/added", b"added by the host", 0o644)
        .is_ok();
    let out = fs.finish();
    let archive = match Archive::new(&out) {
        Ok(a) => a,
        Err(e) => panic!("the host accepted an archive the guest refuses: {e}"),
    };
    let got = members(&archive);
    if added {
        let found = archive.find("/fuzz/added").expect("the added file");
        assert_eq!(found.data, b"added by the host");
        assert!(found.is_file());
    }
    // The base's members come first, unchanged.
    let base = each_archive(data);
    assert!(got.len() >= base.len());
    for (i, (g, b)) in got.iter().zip(&base).enumerate() {
        assert_eq!(
            (g.name, g.mode, g.ino, g.nlink, g.data),
            (b.name, b.mode, b.ino, b.nlink, b.data),
            "member {i}"
        );
    }
});
