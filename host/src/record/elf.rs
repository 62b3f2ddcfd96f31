//! Just enough of a 64-bit little-endian ELF file for `mobius report`: its
//! type (a PIE is loaded at [`PIE_LOAD_BIAS`]), its GNU build id, and its
//! function symbols (`.symtab`, else `.dynsym`), with Rust's legacy
//! mangling undone. Every read is bounds-checked: a broken file gives
//! fewer symbols, never a panic.
use mobius_shared::record::PIE_LOAD_BIAS;

const SHT_SYMTAB: u32 = 2;
const SHT_NOTE: u32 = 7;
const SHT_DYNSYM: u32 = 11;
const STT_FUNC: u8 = 2;
const ET_DYN: u16 = 3;
const NT_GNU_BUILD_ID: u32 = 3;

/// A function symbol: `[start, start + size)` in link-time addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub start: u64,
    pub size: u64,
    pub name: String,
}

/// What `mobius report` takes from a program file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfInfo {
    /// `ET_DYN`: loaded at [`PIE_LOAD_BIAS`].
    pub pie: bool,
    pub build_id: Vec<u8>,
    /// Sorted by start address.
    pub symbols: Vec<Symbol>,
}

impl ElfInfo {
    /// Read `bytes`; `None` unless it is a 64-bit little-endian ELF file.
    pub fn parse(bytes: &[u8]) -> Option<ElfInfo> {
        if bytes.get(..4)? != b"\x7fELF" || *bytes.get(4)? != 2 || *bytes.get(5)? != 1 {
            return None;
        }
        let pie = u16_at(bytes, 16)? == ET_DYN;
        let sections = sections(bytes).unwrap_or_default();
        let build_id = sections
            .iter()
            .filter(|s| s.kind == SHT_NOTE)
            .find_map(|s| build_id(s.data(bytes)?))
            .unwrap_or_default();
        let table = sections
            .iter()
            .find(|s| s.kind == SHT_SYMTAB)
            .or_else(|| sections.iter().find(|s| s.kind == SHT_DYNSYM));
        let mut symbols = table
            .and_then(|t| symbols(bytes, t, sections.get(t.link as usize)?))
            .unwrap_or_default();
        symbols.sort_by(|a, b| a.start.cmp(&b.start).then(a.name.cmp(&b.name)));
        symbols.dedup_by(|b, a| a.start == b.start);
        Some(ElfInfo {
            pie,
            build_id,
            symbols,
        })
    }

    /// Where the guest loads this program: [`PIE_LOAD_BIAS`] or 0.
    pub fn load_bias(&self) -> u64 {
        if self.pie {
            PIE_LOAD_BIAS
        } else {
            0
        }
    }

    /// The function containing the run-time address `addr`, with the
    /// offset into it.
    pub fn lookup(&self, addr: u64) -> Option<(&Symbol, u64)> {
        let at = addr.checked_sub(self.load_bias())?;
        let i = self.symbols.partition_point(|s| s.start <= at);
        let s = self.symbols.get(i.checked_sub(1)?)?;
        let end = match s.size {
            0 => self.symbols.get(i).map_or(u64::MAX, |n| n.start),
            n => s.start.saturating_add(n),
        };
        (at < end).then(|| (s, at - s.start))
    }
}

#[derive(Debug, Clone, Copy)]
struct Section {
    kind: u32,
    offset: u64,
    size: u64,
    link: u32,
    entsize: u64,
}

impl Section {
    fn data<'a>(&self, bytes: &'a [u8]) -> Option<&'a [u8]> {
        let start = usize::try_from(self.offset).ok()?;
        let len = usize::try_from(self.size).ok()?;
        bytes.get(start..start.checked_add(len)?)
    }
}

fn sections(bytes: &[u8]) -> Option<Vec<Section>> {
    let shoff = usize::try_from(u64_at(bytes, 0x28)?).ok()?;
    let entsize = usize::from(u16_at(bytes, 0x3a)?);
    let count = usize::from(u16_at(bytes, 0x3c)?);
    if entsize < 64 {
        return None;
    }
    (0..count)
        .map(|i| {
            let at = shoff.checked_add(i.checked_mul(entsize)?)?;
            Some(Section {
                kind: u32_at(bytes, at + 4)?,
                offset: u64_at(bytes, at + 0x18)?,
                size: u64_at(bytes, at + 0x20)?,
                link: u32_at(bytes, at + 0x28)?,
                entsize: u64_at(bytes, at + 0x38)?,
            })
        })
        .collect()
}

fn symbols(bytes: &[u8], table: &Section, strings: &Section) -> Option<Vec<Symbol>> {
    let data = table.data(bytes)?;
    let names = strings.data(bytes)?;
    let entsize = usize::try_from(table.entsize).ok().filter(|&e| e >= 24)?;
    let out = data
        .chunks_exact(entsize)
        .filter_map(|e| {
            let info = *e.get(4)?;
            let start = u64_at(e, 8)?;
            if info & 0xf != STT_FUNC || start == 0 {
                return None;
            }
            let name_at = usize::try_from(u32_at(e, 0)?).ok()?;
            let raw = names.get(name_at..)?;
            let raw = &raw[..raw.iter().position(|&b| b == 0)?];
            Some(Symbol {
                start,
                size: u64_at(e, 16)?,
                name: demangle(&String::from_utf8_lossy(raw)),
            })
        })
        .collect();
    Some(out)
}

/// The GNU build id among the notes of one `SHT_NOTE` section.
fn build_id(notes: &[u8]) -> Option<Vec<u8>> {
    let mut at = 0usize;
    while at + 12 <= notes.len() {
        let namesz = usize::try_from(u32_at(notes, at)?).ok()?;
        let descsz = usize::try_from(u32_at(notes, at + 4)?).ok()?;
        let kind = u32_at(notes, at + 8)?;
        let name_at = at + 12;
        let desc_at = name_at.checked_add(namesz.checked_next_multiple_of(4)?)?;
        let desc = notes.get(desc_at..desc_at.checked_add(descsz)?)?;
        if kind == NT_GNU_BUILD_ID && notes.get(name_at..name_at + namesz)? == b"GNU\0" {
            return Some(desc.to_vec());
        }
        at = desc_at.checked_add(descsz.checked_next_multiple_of(4)?)?;
    }
    None
}

/// Rust's legacy mangling (`_ZN4core3fmt5write17h0123456789abcdefE`) as
/// a path (`core::fmt::write`), without the hash, and its v0 mangling
/// ([`super::v0`]); anything else unchanged.
pub fn demangle(name: &str) -> String {
    if name.starts_with("_R") {
        return super::v0::demangle(name).unwrap_or_else(|| name.to_string());
    }
    let Some(mut rest) = name.strip_prefix("_ZN") else {
        return name.to_string();
    };
    let mut parts: Vec<String> = Vec::new();
    while !rest.starts_with('E') {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let Some(len) = rest[..digits].parse::<usize>().ok().filter(|_| digits > 0) else {
            return name.to_string();
        };
        let Some(ident) = rest.get(digits..digits + len) else {
            return name.to_string();
        };
        parts.push(unescape(ident));
        rest = &rest[digits + len..];
    }
    let is_hash = |p: &String| {
        p.len() == 17 && p.starts_with('h') && p[1..].bytes().all(|b| b.is_ascii_hexdigit())
    };
    if parts.last().is_some_and(is_hash) {
        parts.pop();
    }
    parts.join("::")
}

fn unescape(ident: &str) -> String {
    const CODES: [(&str, &str); 16] = [
        ("$SP$", "@"),
        ("$BP$", "*"),
        ("$RF$", "&"),
        ("$LT$", "<"),
        ("$GT$", ">"),
        ("$LP$", "("),
        ("$RP$", ")"),
        ("$C$", ","),
        ("$u20$", " "),
        ("$u27$", "'"),
        ("$u5b$", "["),
        ("$u5d$", "]"),
        ("$u7b$", "{"),
        ("$u7d$", "}"),
        ("$u7e$", "~"),
        ("..", "::"),
    ];
    let ident = ident
        .strip_prefix("_$")
        .map_or(ident.to_string(), |r| format!("${r}"));
    CODES
        .iter()
        .fold(ident, |s, (code, text)| s.replace(code, text))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demangles_legacy_rust_names() {
        assert_eq!(
            demangle("_ZN5touch5touch17h0123456789abcdefE"),
            "touch::touch"
        );
        assert_eq!(
            demangle("_ZN4core3ptr85drop_in_place$LT$std..rt..lang_start$LT$$LP$$RP$$GT$..$u7b$$u7b$closure$u7d$$u7d$$GT$17h1111111111111111E"),
            "core::ptr::drop_in_place<std::rt::lang_start<()>::{{closure}}>"
        );
        assert_eq!(demangle("main"), "main");
        assert_eq!(demangle("_ZN99x"), "_ZN99x");
        assert_eq!(demangle("_ZN"), "_ZN");
    }

    #[test]
    fn garbage_is_not_an_elf_and_never_panics() {
        assert_eq!(ElfInfo::parse(b""), None);
        assert_eq!(ElfInfo::parse(b"\x7fELF"), None);
        let mut b = vec![0u8; 256];
        b[..6].copy_from_slice(b"\x7fELF\x02\x01");
        b[0x28] = 0xff; // section headers past the end
        b[0x3a] = 64;
        b[0x3c] = 3;
        let info = ElfInfo::parse(&b).expect("an ELF header");
        assert!(info.symbols.is_empty() && info.build_id.is_empty());
        for cut in 0..b.len() {
            let _ = ElfInfo::parse(&b[..cut]);
        }
    }

    #[test]
    fn reads_this_test_binary() {
        let exe = std::env::current_exe().expect("exe");
        let bytes = std::fs::read(exe).expect("read");
        let info = ElfInfo::parse(&bytes).expect("an ELF");
        assert!(info.symbols.len() > 100, "{}", info.symbols.len());
        let s = info
            .symbols
            .iter()
            .find(|s| s.name.ends_with("reads_this_test_binary"))
            .expect("this test's own symbol");
        let hit = info
            .lookup(info.load_bias() + s.start + 1)
            .map(|(s, off)| (s.name.clone(), off));
        assert_eq!(hit, Some((s.name.clone(), 1)));
        assert!(info.lookup(0).is_none());
    }
}
