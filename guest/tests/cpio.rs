//! The `newc` cpio reader, against archives built here.
use mobius_guest::fs::cpio::{Archive, CpioError, DirEntry, Entry, IMPLICIT_DIR_MODE};
use proptest::prelude::*;

const DIR: u32 = 0o040_755;
const FILE: u32 = 0o100_644;
const EXE: u32 = 0o100_755;
const LINK: u32 = 0o120_777;

/// One member, as `cpio -H newc` writes it (`magic` "070701" or "070702").
#[derive(Clone)]
struct M {
    magic: &'static str,
    name: Vec<u8>,
    mode: u32,
    ino: u32,
    nlink: u32,
    mtime: u32,
    data: Vec<u8>,
    /// `None`: computed (0 for 070701, the byte sum for 070702).
    check: Option<u32>,
    /// `None`: `name.len() + 1`.
    namesize: Option<u32>,
    /// `None`: `data.len()`.
    filesize: Option<u32>,
}

fn m(name: &str, mode: u32, data: &[u8]) -> M {
    M {
        magic: "070701",
        name: name.as_bytes().to_vec(),
        mode,
        ino: 0,
        nlink: 1,
        mtime: 0x6543_2100,
        data: data.to_vec(),
        check: None,
        namesize: None,
        filesize: None,
    }
}

impl M {
    fn with(mut self, f: impl FnOnce(&mut M)) -> M {
        f(&mut self);
        self
    }

    fn write(&self, out: &mut Vec<u8>) {
        let check = self.check.unwrap_or(if self.magic == "070702" {
            self.data.iter().map(|&b| u32::from(b)).sum()
        } else {
            0
        });
        let fields = [
            self.ino,
            self.mode,
            0,
            0,
            self.nlink,
            self.mtime,
            self.filesize.unwrap_or(self.data.len() as u32),
            8,
            1,
            0,
            0,
            self.namesize.unwrap_or(self.name.len() as u32 + 1),
            check,
        ];
        out.extend_from_slice(self.magic.as_bytes());
        for f in fields {
            out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(&self.name);
        out.push(0);
        pad4(out);
        out.extend_from_slice(&self.data);
        pad4(out);
    }
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// The members then the trailer.
fn archive(members: &[M]) -> Vec<u8> {
    let mut out = Vec::new();
    for mb in members {
        mb.write(&mut out);
    }
    m("TRAILER!!!", 0, b"").write(&mut out);
    out
}

/// A small tree: explicit and implicit directories, a symlink, the root.
fn sample() -> Vec<u8> {
    archive(&[
        m(".", DIR, b"").with(|m| m.ino = 1),
        m("bin", DIR, b"").with(|m| m.ino = 2),
        m("bin/hello", EXE, b"\x7fELF...").with(|m| m.ino = 3),
        m("./bin/sh", LINK, b"hello").with(|m| m.ino = 4),
        m("/etc/passwd", FILE, b"root:x:0:0::/:/bin/sh\n").with(|m| m.ino = 5),
        m(".mobius/argv", FILE, b"/bin/hello\0hello\0").with(|m| m.ino = 6),
        m("usr/lib/", DIR, b"").with(|m| m.ino = 7),
        m("usr/lib/a.txt", FILE, b"a").with(|m| m.ino = 8),
    ])
}

fn names(v: &[DirEntry<'_>]) -> Vec<String> {
    v.iter().map(|d| d.name.to_string()).collect()
}

#[test]
fn entries_in_order_with_normalised_names() {
    let bytes = sample();
    let a = Archive::new(&bytes).unwrap();
    assert_eq!(a.len(), 8);
    assert!(!a.is_empty());
    let all: Vec<Entry<'_>> = a.entries().collect();
    let got: Vec<&str> = all.iter().map(|e| e.name).collect();
    assert_eq!(
        got,
        [
            "",
            "bin",
            "bin/hello",
            "bin/sh",
            "etc/passwd",
            ".mobius/argv",
            "usr/lib",
            "usr/lib/a.txt"
        ]
    );
    let hello = &all[2];
    assert_eq!(hello.data, b"\x7fELF...");
    assert_eq!(
        (hello.mode, hello.ino, hello.nlink, hello.mtime),
        (EXE, 3, 1, 0x6543_2100)
    );
    assert!(hello.is_file() && !hello.is_dir() && !hello.is_symlink());
    assert!(all[0].is_dir() && all[3].is_symlink());
    assert_eq!(all[3].data, b"hello");
    // Zero-copy: data borrows the archive bytes.
    let range = bytes.as_ptr_range();
    assert!(range.contains(&hello.data.as_ptr()));
}

#[test]
fn find_normalises_paths() {
    let bytes = sample();
    let a = Archive::new(&bytes).unwrap();
    for p in [
        "/bin/hello",
        "bin/hello",
        "./bin/hello",
        "bin//hello",
        "/./bin/./hello/",
    ] {
        assert_eq!(a.find(p).map(|e| e.ino), Some(3), "{p}");
    }
    for p in ["etc/passwd", "/etc/passwd", "./etc/passwd"] {
        assert_eq!(
            a.find(p).map(|e| e.data),
            Some(&b"root:x:0:0::/:/bin/sh\n"[..])
        );
    }
    for p in ["", "/", ".", "./", "//"] {
        assert_eq!(a.find(p).map(|e| e.ino), Some(1), "root as {p:?}");
    }
    assert_eq!(a.find("usr/lib").map(|e| e.ino), Some(7));
    assert_eq!(
        a.find(mobius_shared::initramfs::ARGV_FILE).map(|e| e.data),
        Some(&b"/bin/hello\0hello\0"[..])
    );
    // Implicit directories are not members; missing paths are missing.
    assert!(a.find("usr").is_none());
    assert!(a.find("bin/hell").is_none());
    assert!(a.find("bin/hello/x").is_none());
    assert!(a.find("in/hello").is_none());
}

#[test]
fn later_members_win() {
    let bytes = archive(&[
        m("a", FILE, b"first").with(|m| m.ino = 1),
        m("b", FILE, b"b"),
        m("./a", FILE, b"second").with(|m| m.ino = 2),
    ]);
    let a = Archive::new(&bytes).unwrap();
    let e = a.find("/a").unwrap();
    assert_eq!((e.data, e.ino), (&b"second"[..], 2));
    assert_eq!(a.entries().count(), 3);
    let root = a.read_dir("/");
    assert_eq!(names(&root), ["a", "b"]);
    assert_eq!(root[0].ino, 2);
}

#[test]
fn root_without_a_dot_member() {
    let bytes = archive(&[m("x/y", FILE, b"")]);
    let a = Archive::new(&bytes).unwrap();
    assert!(a.find("/").is_none());
    assert!(a.is_dir("/") && a.is_dir("") && a.is_dir("."));
    assert_eq!(
        a.read_dir(""),
        [DirEntry {
            name: "x",
            mode: IMPLICIT_DIR_MODE,
            ino: 0
        }]
    );
    assert!(a.read_dir("x")[0].name == "y" && !a.read_dir("x")[0].is_dir());
}

#[test]
fn read_dir_lists_immediate_children_once_sorted() {
    let bytes = sample();
    let a = Archive::new(&bytes).unwrap();
    let root = a.read_dir("/");
    assert_eq!(names(&root), [".mobius", "bin", "etc", "usr"]);
    let by_name = |n: &str| root.iter().find(|d| d.name == n).copied().unwrap();
    assert_eq!(
        by_name("bin"),
        DirEntry {
            name: "bin",
            mode: DIR,
            ino: 2
        }
    );
    assert_eq!(by_name("etc").mode, IMPLICIT_DIR_MODE);
    assert!(by_name("etc").is_dir() && by_name("usr").is_dir());
    for d in ["bin", "/bin", "./bin/", "bin//"] {
        let bin = a.read_dir(d);
        assert_eq!(names(&bin), ["hello", "sh"], "{d}");
        assert_eq!(bin[1].mode, LINK);
    }
    assert_eq!(names(&a.read_dir("usr")), ["lib"]);
    assert_eq!(
        a.read_dir("usr")[0].ino,
        7,
        "the member wins over the implicit directory"
    );
    assert_eq!(names(&a.read_dir("usr/lib")), ["a.txt"]);
    // Missing, not a directory, empty: all empty (ask is_dir to tell apart).
    assert!(a.read_dir("nope").is_empty());
    assert!(a.read_dir("bin/hello").is_empty());
    assert!(a.read_dir("etc/passwd").is_empty());
    let empty = archive(&[m("d", DIR, b"")]);
    let e = Archive::new(&empty).unwrap();
    assert!(e.read_dir("d").is_empty() && e.is_dir("d"));
}

#[test]
fn implicit_directory_before_its_member() {
    // "d/f" first makes d implicit; the later "d" member then gives its mode.
    let bytes = archive(&[
        m("d/f", FILE, b""),
        m("d", 0o040_700, b"").with(|m| m.ino = 9),
    ]);
    let a = Archive::new(&bytes).unwrap();
    assert_eq!(
        a.read_dir("")[0],
        DirEntry {
            name: "d",
            mode: 0o040_700,
            ino: 9
        }
    );
}

#[test]
fn is_dir_cases() {
    let bytes = sample();
    let a = Archive::new(&bytes).unwrap();
    for p in ["", "/", "bin", "/bin/", "etc", "usr", "usr/lib", ".mobius"] {
        assert!(a.is_dir(p), "{p}");
    }
    for p in ["bin/hello", "bin/sh", "etc/passwd", "nope", "bi", "usr/li"] {
        assert!(!a.is_dir(p), "{p}");
    }
    // A member that is a file stays a file even with paths below it.
    let bytes = archive(&[m("f", FILE, b""), m("f/g", FILE, b"")]);
    assert!(!Archive::new(&bytes).unwrap().is_dir("f"));
}

#[test]
fn hard_links_share_the_data_of_the_last_link() {
    // GNU cpio: earlier links have no data, the last one carries it.
    let bytes = archive(&[
        m("a", FILE, b"").with(|m| {
            m.ino = 42;
            m.nlink = 2;
        }),
        m("other", FILE, b"zz").with(|m| m.ino = 43),
        m("b", FILE, b"shared").with(|m| {
            m.ino = 42;
            m.nlink = 2;
        }),
    ]);
    let a = Archive::new(&bytes).unwrap();
    assert_eq!(a.find("a").unwrap().data, b"shared");
    assert_eq!(a.find("b").unwrap().data, b"shared");
    assert!(
        a.entries().next().unwrap().data.is_empty(),
        "entries() is raw"
    );
    // nlink 1 and empty: just empty.
    let bytes = archive(&[
        m("e", FILE, b"").with(|m| m.ino = 42),
        m("f", FILE, b"x").with(|m| m.ino = 42),
    ]);
    assert!(Archive::new(&bytes)
        .unwrap()
        .find("e")
        .unwrap()
        .data
        .is_empty());
}

#[test]
fn crc_variant_checks_the_sum() {
    let good = archive(&[m("f", FILE, b"\xff\xff\x01").with(|m| m.magic = "070702")]);
    let a = Archive::new(&good).unwrap();
    assert_eq!(a.find("f").unwrap().data, b"\xff\xff\x01");
    let bad = archive(&[
        m("ok", FILE, b"x"),
        m("f", FILE, b"abc").with(|m| {
            m.magic = "070702";
            m.check = Some(1);
        }),
    ]);
    let at = 116 + 4; // 110 + "ok\0" padded to 116, + "x" padded to 4
    assert_eq!(
        Archive::new(&bad).unwrap_err(),
        CpioError::BadChecksum { offset: at }
    );
    // Only regular files are checked (GNU cpio writes 0 for symlinks).
    let link = archive(&[m("l", LINK, b"target").with(|m| {
        m.magic = "070702";
        m.check = Some(0);
    })]);
    assert!(Archive::new(&link).is_ok());
    // 070701 ignores check.
    let any = archive(&[m("f", FILE, b"abc").with(|m| m.check = Some(7))]);
    assert!(Archive::new(&any).is_ok());
}

#[test]
fn uppercase_hex_is_accepted() {
    let mut bytes = archive(&[m("f", 0o100_644, b"")]);
    // mode 000081a4 -> 000081A4
    let mode = &mut bytes[14..22];
    assert_eq!(mode, b"000081a4");
    mode.make_ascii_uppercase();
    assert_eq!(
        Archive::new(&bytes).unwrap().find("f").unwrap().mode,
        0o100_644
    );
}

#[test]
fn data_after_the_trailer_is_ignored() {
    let mut bytes = sample();
    let n = Archive::new(&bytes).unwrap().len();
    bytes.extend_from_slice(&[0; 512]);
    bytes.extend_from_slice(b"garbage that is not a header");
    assert_eq!(Archive::new(&bytes).unwrap().len(), n);
    // A second archive after the trailer is not read either.
    bytes.extend_from_slice(&archive(&[m("late", FILE, b"")]));
    assert!(Archive::new(&bytes).unwrap().find("late").is_none());
}

#[test]
fn trailer_without_padding_at_the_very_end() {
    let mut bytes = archive(&[m("f", FILE, b"1")]);
    // The trailer's name "TRAILER!!!\0" (11 bytes) ends at 110+11: pad of 3.
    let end = bytes.len() - 3;
    assert_eq!(bytes.split_off(end), [0, 0, 0]);
    assert_eq!(Archive::new(&bytes).unwrap().len(), 1);
}

#[test]
fn empty_archive_is_just_a_trailer() {
    let bytes = archive(&[]);
    let a = Archive::new(&bytes).unwrap();
    assert!(a.is_empty() && a.entries().next().is_none());
    assert!(a.read_dir("/").is_empty() && a.is_dir("/"));
}

#[test]
fn errors() {
    let base = archive(&[m("a", FILE, b"12345"), m("b", FILE, b"")]);
    let second = 112 + 8; // 110 + "a\0", data 5 -> 8
    assert_eq!(&base[second..second + 6], b"070701");

    assert_eq!(Archive::new(b""), Err(CpioError::NoTrailer));
    let no_trailer = {
        let mut v = Vec::new();
        m("a", FILE, b"x").write(&mut v);
        v
    };
    assert_eq!(Archive::new(&no_trailer), Err(CpioError::NoTrailer));

    let mut b = base.clone();
    b[second + 5] = b'7';
    assert_eq!(
        Archive::new(&b),
        Err(CpioError::BadMagic { offset: second })
    );
    assert_eq!(
        Archive::new(b"0707"),
        Err(CpioError::TruncatedHeader { offset: 0 })
    );
    assert_eq!(
        Archive::new(b"07070"),
        Err(CpioError::TruncatedHeader { offset: 0 })
    );
    assert_eq!(
        Archive::new(b"07071"),
        Err(CpioError::BadMagic { offset: 0 })
    );
    assert_eq!(
        Archive::new(b"\x1f\x8b\x08\0"),
        Err(CpioError::BadMagic { offset: 0 })
    );
    assert_eq!(
        Archive::new(&[0; 200]),
        Err(CpioError::BadMagic { offset: 0 })
    );
    assert_eq!(
        Archive::new(&base[..second + 109]),
        Err(CpioError::TruncatedHeader { offset: second })
    );

    // Field 6 (filesize) of the second header holds a 'g'.
    let mut b = base.clone();
    b[second + 6 + 6 * 8 + 3] = b'g';
    assert_eq!(
        Archive::new(&b),
        Err(CpioError::BadHex {
            offset: second,
            field: "filesize"
        })
    );
    let mut b = base.clone();
    b[6] = b' ';
    assert_eq!(
        Archive::new(&b),
        Err(CpioError::BadHex {
            offset: 0,
            field: "ino"
        })
    );
    let mut b = base.clone();
    b[6 + 12 * 8 + 7] = b'x';
    assert_eq!(
        Archive::new(&b),
        Err(CpioError::BadHex {
            offset: 0,
            field: "check"
        })
    );

    assert_eq!(
        Archive::new(&base[..111]),
        Err(CpioError::TruncatedName { offset: 0 })
    );
    let huge_name = archive(&[m("a", FILE, b"").with(|m| m.namesize = Some(u32::MAX))]);
    assert_eq!(
        Archive::new(&huge_name),
        Err(CpioError::TruncatedName { offset: 0 })
    );

    assert_eq!(
        Archive::new(&base[..112 + 4]),
        Err(CpioError::TruncatedData { offset: 0 })
    );
    let huge_data = archive(&[m("a", FILE, b"").with(|m| m.filesize = Some(u32::MAX))]);
    assert_eq!(
        Archive::new(&huge_data),
        Err(CpioError::TruncatedData { offset: 0 })
    );

    let zero = archive(&[m("a", FILE, b"").with(|m| m.namesize = Some(0))]);
    assert_eq!(
        Archive::new(&zero),
        Err(CpioError::NameNotTerminated { offset: 0 })
    );
    // namesize 1 short: the last byte counted is 'a', not NUL.
    let short = archive(&[m("ab", FILE, b"").with(|m| m.namesize = Some(2))]);
    assert_eq!(
        Archive::new(&short),
        Err(CpioError::NameNotTerminated { offset: 0 })
    );
    let interior = archive(&[m("a\0b", FILE, b"")]);
    assert_eq!(
        Archive::new(&interior),
        Err(CpioError::NameNotTerminated { offset: 0 })
    );

    let latin1 = archive(&[M {
        name: b"caf\xe9".to_vec(),
        ..m("", FILE, b"")
    }]);
    assert_eq!(
        Archive::new(&latin1),
        Err(CpioError::NameNotUtf8 { offset: 0 })
    );
}

#[test]
fn every_error_displays_one_line() {
    let all = [
        CpioError::BadMagic { offset: 4 },
        CpioError::BadHex {
            offset: 4,
            field: "mode",
        },
        CpioError::TruncatedHeader { offset: 4 },
        CpioError::TruncatedName { offset: 4 },
        CpioError::TruncatedData { offset: 4 },
        CpioError::NameNotTerminated { offset: 4 },
        CpioError::NameNotUtf8 { offset: 4 },
        CpioError::BadChecksum { offset: 4 },
        CpioError::SizeOverflow { offset: 4 },
        CpioError::NoTrailer,
    ];
    let mut seen = std::collections::BTreeSet::new();
    for e in all {
        let s = e.to_string();
        assert!(!s.is_empty() && !s.contains('\n'), "{e:?}");
        assert!(seen.insert(s), "{e:?}: duplicate message");
    }
}

/// Optional: `MOBIUS_TEST_CPIO=/path/x.cpio cargo test --test cpio` lists a
/// real archive (e.g. from `find . | cpio -o -H newc`); skipped when unset.
#[test]
fn real_archive_from_env() {
    let Ok(path) = std::env::var("MOBIUS_TEST_CPIO") else {
        return;
    };
    let bytes = std::fs::read(path).unwrap();
    let a = Archive::new(&bytes).unwrap();
    for e in a.entries() {
        let found = a.find(e.name).unwrap();
        assert_eq!(found.name, e.name);
        let (mode, len, found_len) = (e.mode, e.data.len(), found.data.len());
        println!(
            "{mode:o} {len:>8} (found: {found_len:>8}) {} {:?}",
            e.ino, e.name
        );
    }
    println!("root: {:?}", a.read_dir("/"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Random bytes, and random mutations of a valid archive, never panic;
    /// whatever is accepted can be walked.
    #[test]
    fn mutations_never_panic(
        edits in proptest::collection::vec((0usize..400, any::<u8>()), 0..8),
        cut in proptest::option::of(0usize..400),
        noise in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let _ = Archive::new(&noise);
        let mut b = archive(&[m("d/a", FILE, b"hello"), m("./d", DIR, b""), m("x", LINK, b"d/a")]);
        for (i, v) in edits {
            if let Some(x) = b.get_mut(i) {
                *x = v;
            }
        }
        if let Some(c) = cut {
            b.truncate(c);
        }
        if let Ok(a) = Archive::new(&b) {
            prop_assert_eq!(a.entries().count(), a.len());
            for e in a.entries() {
                let _ = (a.find(e.name), a.is_dir(e.name), a.read_dir(e.name));
            }
            let _ = a.read_dir("/");
        }
    }

    /// Random trees round-trip: every file is found with its data, and
    /// read_dir agrees with the set of paths.
    #[test]
    fn random_trees_round_trip(
        files in proptest::collection::btree_map(
            proptest::collection::vec("[a-c]{1,2}", 1..4).prop_map(|v| v.join("/")),
            proptest::collection::vec(any::<u8>(), 0..9),
            0..12,
        ),
        crc in any::<bool>(),
    ) {
        // Drop paths that are a prefix directory of another path.
        let files: Vec<(String, Vec<u8>)> = files
            .iter()
            .filter(|(p, _)| !files.keys().any(|q| q.starts_with(&format!("{p}/"))))
            .map(|(p, d)| (p.clone(), d.clone()))
            .collect();
        let members: Vec<M> = files
            .iter()
            .map(|(p, d)| m(&format!("./{p}"), FILE, d).with(|m| {
                if crc {
                    m.magic = "070702";
                }
            }))
            .collect();
        let bytes = archive(&members);
        let a = Archive::new(&bytes).unwrap();
        prop_assert_eq!(a.len(), files.len());
        for (p, d) in &files {
            let e = a.find(&format!("/{p}")).unwrap();
            prop_assert_eq!(e.data, &d[..]);
            let (parent, leaf) = p.rsplit_once('/').unwrap_or(("", p));
            prop_assert!(a.is_dir(parent));
            prop_assert!(a.read_dir(parent).iter().any(|c| c.name == leaf && !c.is_dir()));
        }
        let root = a.read_dir("");
        let mut want: Vec<&str> = files.iter().map(|(p, _)| p.split('/').next().unwrap()).collect();
        want.sort();
        want.dedup();
        prop_assert_eq!(names(&root), want);
    }

    /// The index answers every look-up as the archive's scans do: random
    /// members (files, directories, links, duplicates, `./` and `//`
    /// spellings), queried at every prefix of every name and a few misses.
    #[test]
    fn index_agrees_with_the_archive(
        members in proptest::collection::vec(
            (
                proptest::collection::vec("[a-c]{1,2}", 1..4),
                0usize..3,
                0usize..3,
                proptest::collection::vec(any::<u8>(), 0..4),
            ),
            0..12,
        ),
    ) {
        let ms: Vec<M> = members
            .iter()
            .map(|(parts, kind, spelling, data)| {
                let path = parts.join("/");
                let name = match spelling {
                    0 => path.clone(),
                    1 => format!("./{path}"),
                    _ => path.replace('/', "//"),
                };
                let mode = [FILE, DIR, LINK][*kind];
                let data = if mode == DIR { &[][..] } else { &data[..] };
                m(&name, mode, data)
            })
            .collect();
        let bytes = archive(&ms);
        let a = Archive::new(&bytes).unwrap();
        let index = a.index();
        let mut queries = vec![String::new(), "/".into(), "zz".into(), "a/zz".into()];
        for (parts, ..) in &members {
            for i in 1..=parts.len() {
                queries.push(parts[..i].join("/"));
                queries.push(format!("/{}/", parts[..i].join("/")));
            }
        }
        for q in &queries {
            prop_assert_eq!(index.find(q), a.find(q), "find {}", q);
            prop_assert_eq!(index.is_dir(q), a.is_dir(q), "is_dir {}", q);
            prop_assert_eq!(index.read_dir(q), a.read_dir(q), "read_dir {}", q);
        }
    }
}

/// A directory member may carry data (the host pads with it, so that the
/// next file's data starts on a page boundary); it is skipped, as Linux
/// skips it: the directory has no contents and the file its own.
#[test]
fn directory_data_is_padding_and_skipped() {
    let bytes = archive(&[
        m("bin", DIR, &[0u8; 3000]).with(|m| m.ino = 2),
        m("bin/hello", EXE, b"\x7fELF...").with(|m| m.ino = 3),
        m("bin", DIR, &[0u8; 12]).with(|m| m.ino = 2),
    ]);
    let a = Archive::new(&bytes).unwrap();
    let bin = a.find("bin").unwrap();
    assert!(bin.is_dir());
    assert_eq!((bin.ino, bin.data.len()), (2, 0));
    assert_eq!(a.find("bin/hello").unwrap().data, b"\x7fELF...");
    let index = a.index();
    assert_eq!(index.find("/bin").unwrap().data.len(), 0);
    assert_eq!(names(&index.read_dir("bin")), ["hello"]);
}

/// The index built while the archive is checked is the archive's index.
#[test]
fn index_built_in_the_checking_pass() {
    let bytes = sample();
    let (a, index) = Archive::new_indexed(&bytes).unwrap();
    assert_eq!(a, Archive::new(&bytes).unwrap());
    let again = a.index();
    for path in [
        "",
        "bin",
        "bin/hello",
        "/bin/sh",
        "etc/passwd",
        "usr",
        "usr/lib/a.txt",
        "no",
    ] {
        assert_eq!(index.find(path), again.find(path), "{path}");
        assert_eq!(index.find(path), a.find(path), "{path}");
        assert_eq!(index.is_dir(path), a.is_dir(path), "{path}");
        assert_eq!(index.read_dir(path), a.read_dir(path), "{path}");
    }
    assert_eq!(
        Archive::new_indexed(&bytes[..bytes.len() - 8]).unwrap_err(),
        Archive::new(&bytes[..bytes.len() - 8]).unwrap_err()
    );
}
