//! The initial process stack, decoded back from its bytes.
use mobius_guest::proc::stack::*;
use proptest::prelude::*;

const TOP: u64 = 0x7fff_ffff_f000;
const RANDOM: [u8; 16] = *b"0123456789abcdef";

/// The stack as the process would see it.
struct View<'a> {
    st: &'a InitialStack,
    top: u64,
}

impl View<'_> {
    fn slice(&self, addr: u64, len: usize) -> &[u8] {
        assert!(
            addr >= self.st.sp && addr + len as u64 <= self.top,
            "{addr:#x} out of the stack"
        );
        let off = (addr - self.st.sp) as usize;
        &self.st.bytes[off..off + len]
    }
    fn word(&self, addr: u64) -> u64 {
        u64::from_le_bytes(self.slice(addr, 8).try_into().unwrap())
    }
    fn cstr(&self, addr: u64) -> Vec<u8> {
        let off = (addr - self.st.sp) as usize;
        let rest = &self.st.bytes[off..];
        let n = rest.iter().position(|&b| b == 0).expect("NUL-terminated");
        rest[..n].to_vec()
    }
}

struct Decoded {
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    auxv: Vec<(u64, u64)>,
}

/// Decodes from sp as a libc's `_start` would, checking the basic shape.
fn decode(st: &InitialStack, top: u64) -> Decoded {
    assert_eq!(st.sp % 16, 0, "sp 16-byte aligned at argc");
    assert_eq!(st.bytes.len() as u64, top - st.sp, "bytes cover [sp, top)");
    assert!(st.bytes.len() as u64 <= MAX_SIZE);
    let v = View { st, top };
    assert_eq!(v.slice(top - 8, 8), [0; 8], "end marker");
    let mut p = st.sp;
    let argc = v.word(p);
    p += 8;
    let mut argv = Vec::new();
    for _ in 0..argc {
        argv.push(v.cstr(v.word(p)));
        p += 8;
    }
    assert_eq!(v.word(p), 0, "argv NULL-terminated");
    p += 8;
    let mut envp = Vec::new();
    while v.word(p) != 0 {
        envp.push(v.cstr(v.word(p)));
        p += 8;
    }
    p += 8;
    let mut auxv = Vec::new();
    loop {
        let (t, val) = (v.word(p), v.word(p + 8));
        p += 16;
        if t == AT_NULL {
            assert_eq!(val, 0);
            break;
        }
        auxv.push((t, val));
    }
    Decoded { argv, envp, auxv }
}

fn aux(d: &Decoded, t: u64) -> Option<u64> {
    let all: Vec<u64> = d.auxv.iter().filter(|a| a.0 == t).map(|a| a.1).collect();
    assert!(all.len() <= 1, "AT {t} once");
    all.first().copied()
}

fn bytes_vec(v: &[&[u8]]) -> Vec<Vec<u8>> {
    v.iter().map(|s| s.to_vec()).collect()
}

#[test]
fn decodes_back() {
    let argv: [&[u8]; 3] = [b"/bin/hello", b"world", b""];
    let envp: [&[u8]; 2] = [b"HOME=/", b"TERM=linux"];
    let caller = [
        (AT_PHDR, 0x400040),
        (AT_PHENT, 56),
        (AT_PHNUM, 10),
        (AT_PAGESZ, 4096),
        (AT_ENTRY, 0x401550),
        (AT_UID, 0),
        (AT_SECURE, 0),
    ];
    let st = build(TOP, &argv, &envp, &caller, RANDOM, b"/bin/hello", b"x86_64").unwrap();
    let d = decode(&st, TOP);
    assert_eq!(d.argv, bytes_vec(&argv));
    assert_eq!(d.envp, bytes_vec(&envp));
    let v = View { st: &st, top: TOP };
    let random = aux(&d, AT_RANDOM).unwrap();
    assert_eq!(v.slice(random, 16), RANDOM);
    assert_eq!(v.cstr(aux(&d, AT_EXECFN).unwrap()), b"/bin/hello");
    assert_eq!(v.cstr(aux(&d, AT_PLATFORM).unwrap()), b"x86_64");
    // Ours first (AT_RANDOM, AT_EXECFN, AT_PLATFORM), then the caller's, in order.
    assert_eq!(
        d.auxv.iter().map(|a| a.0).take(3).collect::<Vec<_>>(),
        [AT_RANDOM, AT_EXECFN, AT_PLATFORM]
    );
    assert_eq!(&d.auxv[3..], &caller[..]);
}

#[test]
fn layout_matches_linux() {
    let argv: [&[u8]; 2] = [b"a", b"bc"];
    let envp: [&[u8]; 1] = [b"K=V"];
    let st = build(TOP, &argv, &envp, &[], RANDOM, b"/x", b"x86_64").unwrap();
    let d = decode(&st, TOP);
    let v = View { st: &st, top: TOP };
    // From the top: 8 zero bytes, execfn, then argv strings then env strings.
    let execfn = aux(&d, AT_EXECFN).unwrap();
    assert_eq!(execfn, TOP - 8 - 3);
    let argv0 = v.word(st.sp + 8);
    let argv1 = v.word(st.sp + 16);
    let env0 = v.word(st.sp + 32);
    assert_eq!((argv1, env0, execfn), (argv0 + 2, argv0 + 5, argv0 + 9));
    // Below the strings, 16-aligned: platform, then the random bytes.
    let platform = aux(&d, AT_PLATFORM).unwrap();
    assert_eq!(platform + 7, argv0 & !15);
    assert_eq!(aux(&d, AT_RANDOM).unwrap(), platform - 16);
    // The tables end at or below the random bytes.
    let table_words = 1 + 3 + 2 + 2 * 4; // argc, argv+NULL, envp+NULL, 3 aux + AT_NULL
    assert!(st.sp + table_words * 8 <= platform - 16);
    assert!(
        platform - 16 - (st.sp + table_words * 8) < 16,
        "no more than alignment slack"
    );
}

#[test]
fn sp_is_aligned_for_every_count_and_top() {
    let strs: [&[u8]; 6] = [b"", b"a", b"bb", b"ccc", b"dddd", b"eeeeeeeeeeeeeeeee"];
    for top in [TOP, TOP - 8, TOP - 3, 0x1_0000_0001] {
        for na in 1..=6 {
            for ne in 0..=6 {
                for nx in 0..3 {
                    let caller: Vec<(u64, u64)> = (0..nx).map(|i| (AT_HWCAP + i, i)).collect();
                    let st = build(
                        top,
                        &strs[..na],
                        &strs[..ne],
                        &caller,
                        RANDOM,
                        b"e",
                        b"x86_64",
                    )
                    .unwrap();
                    let d = decode(&st, top);
                    assert_eq!(d.argv, bytes_vec(&strs[..na]));
                    assert_eq!(d.envp, bytes_vec(&strs[..ne]));
                    assert_eq!(d.auxv.len() as u64, 3 + nx);
                }
            }
        }
    }
}

#[test]
fn empty_argv_becomes_one_empty_string() {
    let st = build(TOP, &[], &[], &[], RANDOM, b"/bin/x", b"x86_64").unwrap();
    let d = decode(&st, TOP);
    assert_eq!(d.argv, [b"".to_vec()]);
    assert!(d.envp.is_empty());
}

#[test]
fn empty_platform_means_no_at_platform() {
    let st = build(TOP, &[b"x"], &[], &[(AT_PAGESZ, 4096)], RANDOM, b"", b"").unwrap();
    let d = decode(&st, TOP);
    assert_eq!(aux(&d, AT_PLATFORM), None);
    let v = View { st: &st, top: TOP };
    assert_eq!(v.cstr(aux(&d, AT_EXECFN).unwrap()), b"");
    assert_eq!(v.slice(aux(&d, AT_RANDOM).unwrap(), 16), RANDOM);
    assert_eq!(
        d.auxv,
        [
            (AT_RANDOM, d.auxv[0].1),
            (AT_EXECFN, d.auxv[1].1),
            (AT_PAGESZ, 4096)
        ]
    );
}

#[test]
fn strings_with_nul_are_rejected() {
    let e = Err(StackError::NulInString);
    assert_eq!(build(TOP, &[b"a\0b"], &[], &[], RANDOM, b"x", b"x86_64"), e);
    assert_eq!(
        build(TOP, &[b"a"], &[b"K=\0"], &[], RANDOM, b"x", b"x86_64"),
        e
    );
    assert_eq!(build(TOP, &[b"a"], &[], &[], RANDOM, b"x\0", b"x86_64"), e);
    assert_eq!(build(TOP, &[b"a"], &[], &[], RANDOM, b"x", b"\0"), e);
}

#[test]
fn reserved_aux_types_are_rejected() {
    for t in [AT_NULL, AT_RANDOM, AT_EXECFN, AT_PLATFORM] {
        assert_eq!(
            build(
                TOP,
                &[b"a"],
                &[],
                &[(AT_PAGESZ, 4096), (t, 1)],
                RANDOM,
                b"x",
                b"x86_64"
            ),
            Err(StackError::ReservedAux(t))
        );
    }
}

#[test]
fn size_limit() {
    let big = vec![b'x'; 100 * 1024];
    let two: [&[u8]; 2] = [&big, &big];
    build(TOP, &two, &[], &[], RANDOM, b"x", b"x86_64").unwrap();
    let three: [&[u8]; 3] = [&big, &big, &big];
    assert!(matches!(
        build(TOP, &[b"a"], &three, &[], RANDOM, b"x", b"x86_64"),
        Err(StackError::TooLarge { .. })
    ));
    // Many tiny strings: the pointer tables count too.
    let many: Vec<&[u8]> = vec![b""; 30_000];
    let r = build(TOP, &many, &[], &[], RANDOM, b"x", b"x86_64");
    assert!(
        matches!(r, Err(StackError::TooLarge { size }) if size > MAX_SIZE),
        "{r:?}"
    );
    let many_aux: Vec<(u64, u64)> = vec![(AT_FLAGS, 0); 20_000];
    assert!(matches!(
        build(TOP, &[b"a"], &[], &many_aux, RANDOM, b"x", b"x86_64"),
        Err(StackError::TooLarge { .. })
    ));
    assert!(matches!(
        build(TOP, &[b"a"], &[], &[], RANDOM, &big[..], &three.concat()),
        Err(StackError::TooLarge { .. })
    ));
    // Exactly at the limit is fine: find the largest env string that fits.
    let fits = (0..4096usize)
        .map(|pad| vec![b'y'; MAX_SIZE as usize - pad])
        .find(|s| build(TOP, &[b"a"], &[&s[..]], &[], RANDOM, b"x", b"x86_64").is_ok());
    let s = fits.unwrap();
    let st = build(TOP, &[b"a"], &[&s[..]], &[], RANDOM, b"x", b"x86_64").unwrap();
    assert!(st.bytes.len() as u64 > MAX_SIZE - 16);
    decode(&st, TOP);
}

#[test]
fn stack_top_too_low() {
    for top in [0, 7, 8, 40, 100] {
        assert_eq!(
            build(top, &[b"a"], &[], &[], RANDOM, b"x", b"x86_64"),
            Err(StackError::StackTopTooLow)
        );
    }
    // Just enough room.
    let st = build(4096, &[b"a"], &[], &[], RANDOM, b"x", b"x86_64").unwrap();
    decode(&st, 4096);
}

#[test]
fn every_error_displays_one_line() {
    let all = [
        StackError::TooLarge { size: 1 << 20 },
        StackError::NulInString,
        StackError::ReservedAux(25),
        StackError::StackTopTooLow,
    ];
    for e in all {
        let s = e.to_string();
        assert!(!s.is_empty() && !s.contains('\n'), "{e:?}");
    }
}

#[test]
fn at_constants_have_linux_values() {
    let want = [
        (AT_NULL, 0),
        (AT_PHDR, 3),
        (AT_PHENT, 4),
        (AT_PHNUM, 5),
        (AT_PAGESZ, 6),
        (AT_BASE, 7),
        (AT_FLAGS, 8),
        (AT_ENTRY, 9),
        (AT_UID, 11),
        (AT_EUID, 12),
        (AT_GID, 13),
        (AT_EGID, 14),
        (AT_PLATFORM, 15),
        (AT_HWCAP, 16),
        (AT_CLKTCK, 17),
        (AT_SECURE, 23),
        (AT_RANDOM, 25),
        (AT_HWCAP2, 26),
        (AT_EXECFN, 31),
        (AT_MINSIGSTKSZ, 51),
    ];
    for (got, want) in want {
        assert_eq!(got, want);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Random vectors decode back exactly; the function never panics.
    #[test]
    fn random_vectors_round_trip(
        top in prop_oneof![Just(TOP), 0u64..0x10_0000, any::<u64>()],
        argv in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..8),
        envp in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..8),
        auxv in proptest::collection::vec((0u64..60, any::<u64>()), 0..6),
        random in any::<[u8; 16]>(),
        execfn in proptest::collection::vec(1u8.., 0..20),
    ) {
        let a: Vec<&[u8]> = argv.iter().map(|v| &v[..]).collect();
        let e: Vec<&[u8]> = envp.iter().map(|v| &v[..]).collect();
        let r = build(top, &a, &e, &auxv, random, &execfn, b"x86_64");
        let has_nul = argv.iter().chain(&envp).any(|s| s.contains(&0));
        let reserved = auxv.iter().any(|x| [AT_NULL, AT_RANDOM, AT_EXECFN, AT_PLATFORM].contains(&x.0));
        match r {
            Ok(st) => {
                prop_assert!(!has_nul && !reserved);
                let d = decode(&st, top);
                let want_argv = if a.is_empty() { vec![Vec::new()] } else { argv.clone() };
                prop_assert_eq!(d.argv, want_argv);
                prop_assert_eq!(d.envp, envp.clone());
                prop_assert_eq!(&d.auxv[3..], &auxv[..]);
                let v = View { st: &st, top };
                prop_assert_eq!(v.slice(d.auxv[0].1, 16), &random[..]);
                prop_assert_eq!(v.cstr(d.auxv[1].1), execfn.clone());
            }
            Err(StackError::NulInString) => prop_assert!(has_nul),
            Err(StackError::ReservedAux(_)) => prop_assert!(reserved),
            Err(StackError::StackTopTooLow) => prop_assert!(top < 0x1000),
            Err(err) => prop_assert!(false, "unexpected {:?}", err),
        }
    }
}
