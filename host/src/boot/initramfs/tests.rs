//! Tests of the archive writer and of what a run packs.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;

use super::newc::pad4;
use super::*;

/// `raw` entries closed as an archive by the writer (its trailer).
fn with_entries(raw: Vec<u8>) -> Vec<u8> {
    let mut fs = Initramfs::default();
    fs.out = raw;
    fs.finish()
}

/// One entry as an independent reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parsed {
    name: String,
    mode: u32,
    nlink: u32,
    ino: u32,
    data: Vec<u8>,
    /// Offset of the data in the archive.
    data_at: usize,
}

/// A small newc reader, written from the format's description rather
/// than from the writer: checks magic, hex fields, NUL-terminated names,
/// 4-byte alignment of names and data, and that the archive ends right
/// after a trailer (and its padding).
fn parse(archive: &[u8]) -> Vec<Parsed> {
    let entries = parse_raw(archive);
    for e in &entries {
        assert!(!e.name.starts_with('/'), "{}", e.name);
    }
    entries
}

/// [`parse`] without the check of names.
fn parse_raw(archive: &[u8]) -> Vec<Parsed> {
    let mut out = Vec::new();
    let mut off = 0;
    loop {
        assert_eq!(off % 4, 0, "entry at {off} not 4-aligned");
        let h = &archive[off..off + 110];
        assert_eq!(&h[..6], b"070701", "magic at {off}");
        let f = |i: usize| {
            let s = std::str::from_utf8(&h[6 + i * 8..14 + i * 8]).unwrap();
            assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
            u32::from_str_radix(s, 16).unwrap()
        };
        let (namesize, filesize) = (f(11) as usize, f(6) as usize);
        let name = &archive[off + 110..off + 110 + namesize];
        assert_eq!(*name.last().unwrap(), 0);
        let name = String::from_utf8(name[..namesize - 1].to_vec()).unwrap();
        let data_off = (off + 110 + namesize).div_ceil(4) * 4;
        assert!(archive[off + 110 + namesize..data_off]
            .iter()
            .all(|&b| b == 0));
        let data = archive[data_off..data_off + filesize].to_vec();
        let end = (data_off + filesize).div_ceil(4) * 4;
        assert!(archive[data_off + filesize..end].iter().all(|&b| b == 0));
        off = end;
        if name == "TRAILER!!!" {
            assert_eq!((f(1), filesize), (0, 0));
            assert_eq!(off, archive.len(), "bytes after the trailer");
            return out;
        }
        out.push(Parsed {
            name,
            mode: f(1),
            nlink: f(4),
            ino: f(0),
            data,
            data_at: data_off,
        });
    }
}

fn names(entries: &[Parsed]) -> Vec<&str> {
    entries.iter().map(|e| e.name.as_str()).collect()
}

fn os(words: &[&str]) -> Vec<OsString> {
    words.iter().map(OsString::from).collect()
}

#[test]
fn writes_newc_with_parents_once() {
    let mut fs = Initramfs::new();
    fs.add_file("/bin/hello", b"\x7fELF....", 0o100755).unwrap();
    fs.add_file("bin/two", b"abc", 0o644).unwrap();
    fs.add_dir("/usr/share/doc").unwrap();
    fs.add_dir("usr//share/").unwrap();
    fs.add_file("/usr/share/x", &[], 0o100600).unwrap();
    let archive = fs.finish();
    assert_eq!(archive.len() % 4, 0);
    let e = parse(&archive);
    assert_eq!(
        names(&e),
        [
            "bin",
            "bin/hello",
            "bin/two",
            "usr",
            "usr/share",
            "usr/share/doc",
            "usr/share/x"
        ]
    );
    assert_eq!((e[0].mode, e[0].nlink), (0o040755, 2));
    assert_eq!((e[1].mode, e[1].nlink), (0o100755, 1));
    assert_eq!(e[1].data, b"\x7fELF....");
    assert_eq!((e[2].mode, e[2].data.as_slice()), (0o100644, &b"abc"[..]));
    assert_eq!((e[6].mode, e[6].data.len()), (0o100600, 0));
    // Distinct inodes, so nothing looks like a hard link.
    let mut inos: Vec<u32> = e.iter().map(|e| e.ino).collect();
    inos.dedup();
    assert_eq!(inos.len(), e.len());
    // The empty archive is just a trailer.
    assert!(parse(&Initramfs::new().finish()).is_empty());
}

#[test]
fn alignment_for_every_name_and_data_length() {
    for name_len in 1..=8 {
        for data_len in 0..=8 {
            let mut fs = Initramfs::new();
            let name = "n".repeat(name_len);
            let data = vec![0xa5; data_len];
            fs.add_file(&name, &data, 0o644).unwrap();
            fs.add_file("z", b"z", 0o644).unwrap();
            let e = parse(&fs.finish());
            assert_eq!(names(&e), [name.as_str(), "z"]);
            assert_eq!(e[0].data, data);
        }
    }
}

/// Files of a page or more start their data on a page boundary, padded
/// by the data of a directory member: the parent created just before
/// (names unchanged), or the parent restated with its inode and mode, or
/// a `.` member for files at the root. Smaller files are not padded.
#[test]
fn data_of_big_files_is_page_aligned() {
    let big: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let mut fs = Initramfs::new();
    fs.add_file("/bin/hello", &big, 0o100755).unwrap();
    fs.add_file("/bin/small", b"abc", 0o644).unwrap();
    fs.add_file("/bin/two", &big[..DATA_ALIGN], 0o755).unwrap();
    fs.add_file("/top", &big, 0o644).unwrap();
    fs.add_file("/lib/a/b", &big, 0o644).unwrap();
    let archive = fs.finish();
    let e = parse(&archive);
    assert_eq!(
        names(&e),
        [
            "bin",
            "bin/hello",
            "bin/small",
            "bin",
            "bin/two",
            ".",
            "top",
            "lib",
            "lib/a",
            "lib/a/b"
        ]
    );
    for (i, want) in [(1, &big[..]), (4, &big[..DATA_ALIGN]), (6, &big), (9, &big)] {
        assert_eq!(e[i].data, want, "{}", e[i].name);
        assert_eq!(e[i].data_at % DATA_ALIGN, 0, "{}", e[i].name);
    }
    assert_ne!(e[2].data_at % DATA_ALIGN, 0, "small files are not padded");
    // Padding is zeroes in directory members; a restated directory keeps
    // its inode and mode.
    for i in [0, 3, 5, 8] {
        assert_eq!(e[i].mode & S_IFMT, S_IFDIR, "{}", e[i].name);
        assert!(e[i].data.iter().all(|&b| b == 0));
    }
    assert!(!e[0].data.is_empty());
    assert_eq!((e[3].ino, e[3].mode), (e[0].ino, e[0].mode));
    assert!(e[7].data.is_empty(), "lib is not the parent of lib/a/b");
    // Reading it back keeps the restated directory once.
    let again = Initramfs::from_archive(&archive).unwrap();
    assert_eq!(parse(&again.finish()).len(), e.len());
}

#[test]
fn refuses_bad_names_and_conflicts() {
    let mut fs = Initramfs::new();
    fs.add_file("/etc/motd", b"hi", 0o644).unwrap();
    assert!(matches!(
        fs.add_file("etc/motd", b"again", 0o644),
        Err(InitramfsError::Duplicate { .. })
    ));
    assert!(matches!(
        fs.add_file("/etc/motd/x", b"", 0o644),
        Err(InitramfsError::ParentNotDir { .. })
    ));
    assert!(matches!(
        fs.add_dir("/etc/motd"),
        Err(InitramfsError::ParentNotDir { .. })
    ));
    assert!(matches!(
        fs.add_file("/etc", b"", 0o644),
        Err(InitramfsError::Duplicate { .. })
    ));
    for bad in ["", "/", "a/../b", "./a", "a\0b", "TRAILER!!!"] {
        assert!(
            matches!(
                fs.add_file(bad, b"", 0o644),
                Err(InitramfsError::BadPath { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        fs.add_file("/dev/null", b"", 0o020666),
        Err(InitramfsError::BadMode { .. })
    ));
    // The archive is still well formed after refusals.
    assert_eq!(names(&parse(&fs.finish())), ["etc", "etc/motd"]);
}

#[test]
fn appends_after_a_user_archive() {
    let mut user = Initramfs::new();
    user.add_file("/etc/motd", b"hello\n", 0o644).unwrap();
    user.add_dir("/bin").unwrap();
    let mut base = user.finish();
    base.resize(512, 0); // cpio pads its output to 512 bytes
    let mut fs = Initramfs::from_archive(&base).unwrap();
    fs.add_file("/bin/prog", b"code", PROGRAM_MODE).unwrap();
    assert!(matches!(
        fs.add_file("/etc/motd", b"", 0o644),
        Err(InitramfsError::InBase { .. })
    ));
    let e = parse(&fs.finish());
    // "bin" is the user's directory, not added a second time.
    assert_eq!(names(&e), ["etc", "etc/motd", "bin", "bin/prog"]);
    assert_eq!(e[1].data, b"hello\n");
    assert!(e[3].ino > e[2].ino);

    // Names such as "./etc" or "/etc" in the user's archive are the
    // same files as ours.
    let mut raw = Vec::new();
    for (name, mode) in [(".", DIR_MODE), ("./etc", DIR_MODE), ("/etc/x", 0o100644)] {
        Initramfs::header(&mut raw, 7, mode, 1, 0, name.len() as u32 + 1);
        raw.extend_from_slice(name.as_bytes());
        raw.push(0);
        pad4(&mut raw);
    }
    let mut fs = Initramfs::from_archive(&with_entries(raw)).unwrap();
    assert!(matches!(
        fs.add_file("etc/x", b"", 0o644),
        Err(InitramfsError::InBase { .. })
    ));
    fs.add_file("etc/y", b"", 0o644).unwrap();
    let e = parse_raw(&fs.finish());
    assert_eq!(names(&e), [".", "./etc", "/etc/x", "etc/y"]);
    assert_eq!(e[3].ino, 8);

    // Two concatenated archives are one base.
    let mut second = Initramfs::new();
    second.add_file("/two", b"2", 0o644).unwrap();
    let mut both = base.clone();
    both.extend_from_slice(&second.finish());
    let fs = Initramfs::from_archive(&both).unwrap();
    assert_eq!(
        names(&parse(&fs.finish())),
        ["etc", "etc/motd", "bin", "two"]
    );
}

#[test]
fn rejects_what_is_not_newc() {
    let not = |bytes: &[u8], hint: &str| match Initramfs::from_archive(bytes) {
        Err(InitramfsError::NotNewc(why)) => assert!(why.contains(hint), "{why}"),
        other => panic!("{other:?}"),
    };
    not(b"", "empty");
    not(b"\x1f\x8b\x08\0\0\0", "gzip");
    not(b"070707000000", "070707");
    not(b"hello world", "070701");
    let mut fs = Initramfs::new();
    fs.add_file("a", b"data", 0o644).unwrap();
    let good = fs.finish();
    for cut in [10, 110, 115, 120, good.len() - 8] {
        assert!(
            matches!(
                Initramfs::from_archive(&good[..cut]),
                Err(InitramfsError::Malformed(_))
            ),
            "cut at {cut}"
        );
    }
    let mut junk = good.clone();
    junk.extend_from_slice(b"\0\0junk");
    assert!(matches!(
        Initramfs::from_archive(&junk),
        Err(InitramfsError::Malformed(_))
    ));
    let mut bad_hex = good.clone();
    bad_hex[6 + 6 * 8] = b'g';
    assert!(Initramfs::from_archive(&bad_hex).is_err());
    // Every field is 8 hex digits, the fields the host does not read too
    // (gid, mtime, check...), and a sign is no digit: the archive goes to
    // the guest as it is, and the guest's reader refuses all of these
    // (found by the initramfs fuzz target).
    for (field, digits) in [
        (3, b"zzzzzzzz"),
        (5, b"0000 001"),
        (12, b"+0000000"),
        (6, b"+0000004"),
    ] {
        let mut bad = good.clone();
        bad[6 + 8 * field..14 + 8 * field].copy_from_slice(digits);
        assert!(
            matches!(
                Initramfs::from_archive(&bad),
                Err(InitramfsError::Malformed(_))
            ),
            "field {field}"
        );
    }
    // Names: UTF-8, one NUL at the end.
    for bad_name in [&b"\xff\0"[..], b"\0\0"] {
        let mut raw = Vec::new();
        Initramfs::header(&mut raw, 1, 0o100644, 1, 0, 3);
        raw.extend_from_slice(b"a");
        raw.extend_from_slice(bad_name);
        pad4(&mut raw);
        let archive = with_entries(raw);
        assert!(matches!(
            Initramfs::from_archive(&archive),
            Err(InitramfsError::Malformed(_))
        ));
    }
    // The checksummed variant (070702) is newc too; a regular file's data
    // must sum to its check field ("data": 0x19a), as the guest requires.
    let mut crc = good.clone();
    crc[5] = b'2';
    match Initramfs::from_archive(&crc) {
        Err(InitramfsError::Malformed(why)) => assert!(why.contains("checksum"), "{why}"),
        other => panic!("{other:?}"),
    }
    crc[102..110].copy_from_slice(b"0000019a");
    let fs = Initramfs::from_archive(&crc).unwrap();
    let out = fs.finish();
    assert_eq!(&out[..6], b"070702");
    assert_eq!(&out[out.len() - 124..][..6], b"070701");
}

#[test]
fn argv_and_env_encoding() {
    assert_eq!(
        encode_argv("/bin/hello", &os(&["./hello", "world", ""])).unwrap(),
        b"/bin/hello\0./hello\0world\0\0"
    );
    assert!(matches!(
        encode_argv("/bin/x", &os(&["x", "a\0b"])),
        Err(InitramfsError::ArgNul { index: 1 })
    ));
    assert_eq!(
        encode_env(&["A=1".into(), "PATH=/bin:/usr/bin".into(), "E=".into()]).unwrap(),
        b"A=1\0PATH=/bin:/usr/bin\0E=\0"
    );
    assert!(encode_env(&[]).unwrap().is_empty());
    for bad in ["A", "=1", ""] {
        assert!(matches!(check_env(bad), Err(InitramfsError::BadEnv(_))));
    }
    assert!(matches!(check_env("A=\0"), Err(InitramfsError::EnvNul)));
}

#[test]
fn file_specs() {
    let f: FileSpec = "data/in.txt".parse().unwrap();
    assert_eq!(
        (f.host, f.guest),
        (PathBuf::from("data/in.txt"), "/in.txt".into())
    );
    let f: FileSpec = "in.txt:/etc/conf".parse().unwrap();
    assert_eq!(
        (f.host, f.guest),
        (PathBuf::from("in.txt"), "/etc/conf".into())
    );
    let f: FileSpec = "a/in.txt:/etc/".parse().unwrap();
    assert_eq!(f.guest, "/etc/in.txt");
    let f: FileSpec = "in.txt:/".parse().unwrap();
    assert_eq!(f.guest, "/in.txt");
    for bad in [
        "in.txt:etc/conf",
        ":/x",
        "in.txt:/a/../b",
        "..",
        "x:/TRAILER!!!",
    ] {
        assert!(bad.parse::<FileSpec>().is_err(), "{bad}");
    }
}

struct Dir(tempfile::TempDir);
impl Dir {
    fn new() -> Self {
        Dir(tempfile::tempdir().unwrap())
    }
    fn write(&self, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }
}

/// The start of a 64-bit little-endian x86-64 ELF header.
fn fake_elf() -> Vec<u8> {
    let mut b = vec![0u8; 64];
    b[..6].copy_from_slice(b"\x7fELF\x02\x01");
    b[18] = 62;
    b
}

fn program_spec(d: &Dir) -> (ArchiveSpec, PathBuf) {
    let prog = d.write("hello", &fake_elf(), 0o755);
    let data = d.write("data.txt", b"some data", 0o640);
    let spec = ArchiveSpec {
        program: vec![prog.clone().into(), "-x".into(), "two words".into()],
        files: vec![
            format!("{}:/etc/", data.display()).parse().unwrap(),
            data.to_str().unwrap().parse().unwrap(),
        ],
        env: vec!["HOME=/".into(), "K=a=b".into()],
        initrd: None,
        program_on_disk: false,
        misplaced_root: None,
    };
    (spec, prog)
}

fn disk(root: bool) -> crate::devices::virtio::disk::DiskConfig {
    crate::devices::virtio::disk::DiskConfig {
        path: "rootfs.ext4".into(),
        writable: false,
        root,
        fail: Vec::new(),
    }
}

#[test]
fn a_program_on_the_root_disk_is_named_not_packed() {
    let d = Dir::new();
    let (spec, prog) = program_spec(&d);
    let word = |w: &str| Some(OsStr::new(w).to_owned());
    // Which words name a program on the disk.
    let on_disk = |w: &str, disks: &[_]| program_on_disk(word(w).as_deref(), disks);
    assert!(on_disk("/bin/not-on-this-host-xyz", &[disk(false)]));
    assert!(!on_disk("/bin/not-on-this-host-xyz", &[]), "no disk");
    assert!(
        !on_disk(prog.to_str().unwrap(), &[disk(false)]),
        "a host file"
    );
    assert!(!on_disk("relative/prog", &[disk(false)]));
    assert!(
        on_disk(prog.to_str().unwrap(), &[disk(true)]),
        ",root forces it"
    );
    assert!(!program_on_disk(None, &[disk(true)]));
    // The archive: argv names the guest path; nothing is read on the host.
    let on = ArchiveSpec {
        program: vec!["/bin/sh".into(), "-c".into(), "echo hi".into()],
        files: vec![],
        program_on_disk: true,
        ..spec.clone()
    };
    let e = parse(&on.build_archive().unwrap());
    assert_eq!(
        names(&e),
        [
            ".mobius",
            ".mobius/root-disk",
            ".mobius/argv",
            ".mobius/env"
        ]
    );
    let argv = e.iter().find(|x| x.name == ".mobius/argv").unwrap();
    assert_eq!(argv.data, b"/bin/sh\0/bin/sh\0-c\0echo hi\0");
    // A relative word cannot name a disk path; only the first disk is root.
    let relative = ArchiveSpec {
        program: vec!["sh".into()],
        ..on.clone()
    };
    assert!(matches!(
        relative.build().unwrap_err(),
        InitramfsError::DiskProgramNotAbsolute(w) if w == "sh"
    ));
    let misplaced = ArchiveSpec {
        misplaced_root: Some("b.img".into()),
        ..on
    };
    let e = misplaced.build().unwrap_err();
    assert!(matches!(&e, InitramfsError::RootDiskNotFirst(p) if p == "b.img"));
    assert!(e.to_string().contains("only the first --disk"), "{e}");
}

#[test]
fn program_archive() {
    let d = Dir::new();
    let (spec, prog) = program_spec(&d);
    let e = parse(&spec.build().unwrap().unwrap());
    assert_eq!(
        names(&e),
        [
            "bin",
            "bin/hello",
            "etc",
            "etc/data.txt",
            "data.txt",
            ".mobius",
            ".mobius/argv",
            ".mobius/env"
        ]
    );
    assert_eq!((e[1].mode, e[1].data.clone()), (0o100755, fake_elf()));
    assert_eq!(
        (e[3].mode, e[3].data.as_slice()),
        (0o100640, &b"some data"[..])
    );
    let mut argv = b"/bin/hello\0".to_vec();
    argv.extend_from_slice(prog.as_os_str().as_bytes());
    argv.extend_from_slice(b"\0-x\0two words\0");
    assert_eq!(e[6].data, argv);
    assert_eq!(e[7].data, b"HOME=/\0K=a=b\0");
    assert_eq!(e[6].mode, CONTROL_MODE);

    // No environment: no env file. Nothing at all: no archive.
    let quiet = ArchiveSpec {
        env: vec![],
        files: vec![],
        ..spec.clone()
    };
    let e = parse(&quiet.build_archive().unwrap());
    assert_eq!(names(&e), ["bin", "bin/hello", ".mobius", ".mobius/argv"]);
    assert!(ArchiveSpec::default().build().unwrap().is_none());
}

#[test]
fn program_archive_errors() {
    let d = Dir::new();
    let (spec, prog) = program_spec(&d);
    let with_program = |words: Vec<OsString>| ArchiveSpec {
        program: words,
        ..spec.clone()
    };
    let err = |s: ArchiveSpec| s.build().unwrap_err();
    let missing = d.0.path().join("nope");
    assert!(matches!(
        err(with_program(vec![missing.clone().into()])),
        InitramfsError::Read {
            what: "program",
            ..
        }
    ));
    assert!(matches!(
        err(with_program(os(&["surely-no-such-file-here"]))),
        InitramfsError::NoSuchProgram(_)
    ));
    assert!(matches!(
        err(with_program(vec![d.0.path().into()])),
        InitramfsError::NotAFile { .. }
    ));
    let script = d.write("script", b"#!/bin/sh\n", 0o755);
    assert!(matches!(
        err(with_program(vec![script.into()])),
        InitramfsError::NotElf { .. }
    ));
    let big = "x".repeat(ARGS_MAX);
    assert!(matches!(
        err(with_program(vec![prog.clone().into(), big.into()])),
        InitramfsError::ArgsTooLarge { .. }
    ));
    // Exactly ARGS_MAX bytes of argv + env fit.
    let used = "/bin/hello\0".len() + prog.as_os_str().len() + 1 + "HOME=/\0K=a=b\0".len();
    let fill = "y".repeat(ARGS_MAX - used - 1);
    let exact = ArchiveSpec {
        files: vec![],
        ..with_program(vec![prog.clone().into(), fill.into()])
    };
    exact.build().unwrap();
    let no_prog = ArchiveSpec {
        program: vec![],
        ..spec.clone()
    };
    assert!(matches!(err(no_prog), InitramfsError::EnvWithoutProgram));
    let missing_file = ArchiveSpec {
        files: vec![FileSpec {
            host: missing,
            guest: "/x".into(),
        }],
        ..spec.clone()
    };
    assert!(matches!(
        err(missing_file),
        InitramfsError::Read { what: "--file", .. }
    ));
    let clash = ArchiveSpec {
        files: vec![format!("{}:/bin/hello", prog.display()).parse().unwrap()],
        ..spec.clone()
    };
    assert!(matches!(err(clash), InitramfsError::Duplicate { .. }));
    let not_cpio = d.write("initrd.gz", b"\x1f\x8b\x08\0rest", 0o644);
    let e = err(ArchiveSpec {
        initrd: Some(not_cpio),
        ..spec.clone()
    });
    assert!(e.to_string().contains("gzip"), "{e}");
    assert!(e.to_string().starts_with("--initrd "), "{e}");
}

#[test]
fn program_after_initrd() {
    let d = Dir::new();
    let (spec, _) = program_spec(&d);
    let mut user = Initramfs::new();
    user.add_file("/etc/motd", b"motd", 0o644).unwrap();
    let initrd = d.write("user.cpio", &user.finish(), 0o644);
    let spec = ArchiveSpec {
        initrd: Some(initrd),
        files: vec![],
        ..spec
    };
    let e = parse(&spec.build().unwrap().unwrap());
    assert_eq!(
        names(&e),
        [
            "etc",
            "etc/motd",
            "bin",
            "bin/hello",
            ".mobius",
            ".mobius/argv",
            ".mobius/env"
        ]
    );
}

/// GNU cpio, when installed, lists and extracts what we write, and
/// writes what we read; skipped without it.
#[test]
fn gnu_cpio_agrees() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    if Command::new("cpio").arg("--version").output().is_err() {
        eprintln!("SKIP: cpio not installed");
        return;
    }
    let d = Dir::new();
    let (spec, _) = program_spec(&d);
    let archive = spec.build_archive().unwrap();
    let out = d.0.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let cpio = |args: &[&str], input: &[u8]| {
        let mut child = Command::new("cpio")
            .args(args)
            .current_dir(&out)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    };
    let listed = String::from_utf8(cpio(&["-it", "--quiet"], &archive)).unwrap();
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        [
            "bin",
            "bin/hello",
            "etc",
            "etc/data.txt",
            "data.txt",
            ".mobius",
            ".mobius/argv",
            ".mobius/env"
        ]
    );
    cpio(&["-id", "--quiet", "--no-absolute-filenames"], &archive);
    assert_eq!(std::fs::read(out.join("bin/hello")).unwrap(), fake_elf());
    let mode = std::fs::metadata(out.join("bin/hello"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(
        std::fs::read(out.join(".mobius/env")).unwrap(),
        b"HOME=/\0K=a=b\0"
    );

    // A program of more than a page: its data padded to a page boundary,
    // which cpio reads as any archive.
    let big: Vec<u8> = (0..9000u32).map(|i| (i % 253) as u8).collect();
    let mut fs = Initramfs::new();
    fs.add_file("/bin/big", &big, 0o755).unwrap();
    fs.add_file("/bin/big2", &big, 0o755).unwrap();
    let aligned = fs.finish();
    let listed = String::from_utf8(cpio(&["-it", "--quiet"], &aligned)).unwrap();
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        ["bin", "bin/big", "bin", "bin/big2"]
    );
    cpio(&["-idu", "--quiet", "--no-absolute-filenames"], &aligned);
    assert_eq!(std::fs::read(out.join("bin/big")).unwrap(), big);
    assert_eq!(std::fs::read(out.join("bin/big2")).unwrap(), big);

    // An archive written by cpio is a valid --initrd base.
    let listing = b"./bin\n./bin/hello\n./data.txt\n";
    let theirs = cpio(&["-o", "-H", "newc", "--quiet"], listing);
    assert_eq!(theirs.len() % 512, 0);
    let mut fs = Initramfs::from_archive(&theirs).unwrap();
    assert!(matches!(
        fs.add_file("/bin/hello", b"", 0o755),
        Err(InitramfsError::InBase { .. })
    ));
    fs.add_file("/bin/more", b"more", 0o755).unwrap();
    let e = parse(&fs.finish());
    assert_eq!(names(&e), ["bin", "bin/hello", "data.txt", "bin/more"]);
    assert_eq!(e[1].data, fake_elf());
}
