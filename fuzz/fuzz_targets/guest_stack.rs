//! The guest's initial-stack builder (`mobius_guest::proc::stack::build`)
//! on arbitrary arguments: it never panics, and a stack it builds reads
//! back, as a program's start-up code reads it, to exactly what it was
//! given: `sp` 16-byte aligned, `argc`, the `argv` and `envp` pointers to
//! the strings, the auxiliary vector with `AT_RANDOM` and `AT_EXECFN`
//! pointing at their bytes, all inside `[sp, stack_top)` and within
//! `MAX_SIZE`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mobius_guest::proc::stack::{
    build, StackError, AT_EXECFN, AT_NULL, AT_PLATFORM, AT_RANDOM, MAX_SIZE,
};

#[derive(Arbitrary, Debug)]
struct Input {
    stack_top: u64,
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    auxv: Vec<(u64, u64)>,
    random: [u8; 16],
    execfn: Vec<u8>,
    platform: Vec<u8>,
    /// Repeat the first argument this many times (large stacks).
    repeat: u16,
}

struct Reader<'a> {
    bytes: &'a [u8],
    sp: u64,
}

impl Reader<'_> {
    fn word(&self, addr: u64) -> u64 {
        let at = usize::try_from(addr - self.sp).expect("small");
        u64::from_le_bytes(self.bytes[at..at + 8].try_into().expect("8 bytes"))
    }
    /// The NUL-terminated string at `addr`.
    fn string(&self, addr: u64) -> &[u8] {
        assert!(addr >= self.sp, "string below sp");
        let at = usize::try_from(addr - self.sp).expect("small");
        let rest = &self.bytes[at..];
        let end = rest.iter().position(|&b| b == 0).expect("NUL-terminated");
        &rest[..end]
    }
}

fuzz_target!(|input: Input| {
    let mut argv: Vec<&[u8]> = input.argv.iter().map(Vec::as_slice).collect();
    if let Some(&first) = argv.first() {
        argv.extend(std::iter::repeat_n(first, usize::from(input.repeat)));
    }
    let envp: Vec<&[u8]> = input.envp.iter().map(Vec::as_slice).collect();
    let result = build(
        input.stack_top,
        &argv,
        &envp,
        &input.auxv,
        input.random,
        &input.execfn,
        &input.platform,
    );
    let stack = match result {
        Ok(s) => s,
        Err(StackError::NulInString) => {
            let all = argv.iter().chain(&envp);
            assert!(all
                .chain([&input.execfn.as_slice(), &input.platform.as_slice()])
                .any(|s| s.contains(&0)));
            return;
        }
        Err(StackError::ReservedAux(t)) => {
            assert!(matches!(t, AT_NULL | AT_RANDOM | AT_EXECFN | AT_PLATFORM));
            assert!(input.auxv.iter().any(|&(k, _)| k == t));
            return;
        }
        Err(_) => return,
    };
    let sp = stack.sp;
    assert_eq!(sp % 16, 0, "sp {sp:#x} not 16-aligned");
    assert!(sp < input.stack_top);
    assert_eq!(stack.bytes.len() as u64, input.stack_top - sp);
    assert!(stack.bytes.len() as u64 <= MAX_SIZE);
    assert_eq!(stack.bytes[stack.bytes.len() - 8..], [0u8; 8]);

    let r = Reader {
        bytes: &stack.bytes,
        sp,
    };
    let want_argv: Vec<&[u8]> = if argv.is_empty() { vec![b""] } else { argv };
    let mut at = sp;
    assert_eq!(r.word(at), want_argv.len() as u64, "argc");
    at += 8;
    for (list, what) in [(&want_argv, "argv"), (&envp, "envp")] {
        for (i, s) in list.iter().enumerate() {
            assert_eq!(r.string(r.word(at)), *s, "{what}[{i}]");
            at += 8;
        }
        assert_eq!(r.word(at), 0, "{what} NULL");
        at += 8;
    }
    let mut aux = Vec::new();
    loop {
        let (t, v) = (r.word(at), r.word(at + 8));
        at += 16;
        if t == AT_NULL {
            break;
        }
        aux.push((t, v));
    }
    let get = |t| aux.iter().find(|(k, _)| *k == t).map(|&(_, v)| v);
    let random = get(AT_RANDOM).expect("AT_RANDOM");
    assert!(random >= at, "AT_RANDOM inside the tables");
    let off = (random - sp) as usize;
    assert_eq!(stack.bytes[off..off + 16], input.random);
    assert_eq!(
        r.string(get(AT_EXECFN).expect("AT_EXECFN")),
        &input.execfn[..]
    );
    match get(AT_PLATFORM) {
        Some(p) => assert_eq!(r.string(p), &input.platform[..]),
        None => assert!(input.platform.is_empty()),
    }
    let own = aux
        .iter()
        .filter(|(t, _)| matches!(*t, AT_RANDOM | AT_EXECFN | AT_PLATFORM))
        .count();
    assert_eq!(&aux[own..], &input.auxv[..]);
});
