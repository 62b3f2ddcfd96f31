//! The guest's cpio reader (`mobius_guest::fs::cpio`) on arbitrary bytes:
//! `Archive::new` never panics, and once it accepts an archive nothing
//! fails: every member is found by its name, member data lies inside the
//! archive, and each directory listing is sorted, unique, one component a
//! name, and agrees with `find` and `is_dir`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mobius_guest::fs::cpio::{Archive, IMPLICIT_DIR_MODE};

fn components(p: &str) -> Vec<&str> {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

fn check_dir(archive: &Archive<'_>, dir: &str) {
    let list = archive.read_dir(dir);
    if !archive.is_dir(dir) {
        assert!(
            list.is_empty(),
            "{dir:?} is no directory but lists {list:?}"
        );
        return;
    }
    for pair in list.windows(2) {
        assert!(pair[0].name < pair[1].name, "{list:?} not sorted");
    }
    for child in &list {
        assert!(
            !child.name.is_empty() && child.name != "." && !child.name.contains('/'),
            "child {:?}",
            child.name
        );
        let path = format!("{dir}/{}", child.name);
        match archive.find(&path) {
            Some(e) => assert_eq!((e.mode, e.ino), (child.mode, child.ino), "{path:?}"),
            None => {
                assert_eq!((child.mode, child.ino), (IMPLICIT_DIR_MODE, 0));
                assert!(archive.is_dir(&path), "implicit {path:?}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(archive) = Archive::new(data) else {
        return;
    };
    let entries: Vec<_> = archive.entries().collect();
    assert_eq!(entries.len(), archive.len());
    assert_eq!(archive.is_empty(), entries.is_empty());
    let bytes = data.as_ptr_range();
    let mut dirs = vec![String::new()];
    for e in &entries {
        let d = e.data.as_ptr_range();
        assert!(
            e.data.is_empty() || (bytes.start <= d.start && d.end <= bytes.end),
            "data outside the archive"
        );
        assert!(
            !e.name.starts_with('/') && !e.name.starts_with("./") && !e.name.ends_with('/'),
            "name {:?} not normalised",
            e.name
        );
        assert_ne!(e.name, ".");
        let found = archive.find(e.name).expect("a member is found by its name");
        assert_eq!(components(found.name), components(e.name));
        if components(e.name).is_empty() {
            assert!(archive.is_dir(e.name));
        }
        // Its parent directory: listed, with this member's last component.
        let comps = components(e.name);
        if let Some((last, parent)) = comps.split_last() {
            let parent = parent.join("/");
            if archive.is_dir(&parent) {
                assert!(
                    archive.read_dir(&parent).iter().any(|c| c.name == *last),
                    "{:?} not listed in {parent:?}",
                    e.name
                );
            }
            dirs.push(parent);
        }
        if e.is_dir() {
            dirs.push(e.name.to_string());
        }
    }
    dirs.sort();
    dirs.dedup();
    for dir in dirs.iter().take(64) {
        check_dir(&archive, dir);
    }
});
