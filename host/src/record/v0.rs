//! Rust's v0 symbol mangling (`_R...`, RFC 2603) read back into a path,
//! the way `mobius report` names functions of the standard library
//! (which the toolchain builds with v0): `_RNvNtCs1234_3std2rt19lang_start_internal`
//! is `std::rt::lang_start_internal`. Crate disambiguators and the
//! instantiating crate are left out; generic arguments, impls
//! (`<T as Trait>`), closures (`{closure#0}`), references, tuples, arrays,
//! slices, pointers, function pointers and `dyn` types are printed.
//! Anything this reader does not understand (or a backreference chain
//! deeper than [`MAX_DEPTH`]) gives `None`: the caller shows the raw name.

/// Deepest nesting (and backreference chain) followed.
pub const MAX_DEPTH: u32 = 64;

/// The demangled path of a v0 symbol, `None` if `name` is not one.
pub fn demangle(name: &str) -> Option<String> {
    let body = name.strip_prefix("_R")?;
    let mut p = Parser {
        s: body.as_bytes(),
        pos: 0,
        depth: 0,
    };
    // An optional encoding version (decimal) before the path.
    while p.peek().is_some_and(|c| c.is_ascii_digit()) {
        p.pos += 1;
    }
    let out = p.path()?;
    Some(out)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: u32,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// `{0-9a-zA-Z} "_"`: "_" alone is 0, else the digits' value plus one.
    fn base62(&mut self) -> Option<u64> {
        if self.eat(b'_') {
            return Some(0);
        }
        let mut v: u64 = 0;
        loop {
            let c = self.next()?;
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'z' => c - b'a' + 10,
                b'A'..=b'Z' => c - b'A' + 36,
                b'_' => return v.checked_add(1),
                _ => return None,
            };
            v = v.checked_mul(62)?.checked_add(u64::from(d))?;
        }
    }

    fn disambiguator(&mut self) -> Option<u64> {
        if self.eat(b's') {
            self.base62()
        } else {
            Some(0)
        }
    }

    fn decimal(&mut self) -> Option<usize> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        std::str::from_utf8(self.s.get(start..self.pos)?)
            .ok()?
            .parse()
            .ok()
    }

    /// `["u"] decimal ["_"] bytes` (punycode shown as it is).
    fn ident(&mut self) -> Option<String> {
        let _punycode = self.eat(b'u');
        let len = self.decimal()?;
        self.eat(b'_');
        let end = self.pos.checked_add(len)?;
        let bytes = self.s.get(self.pos..end)?;
        self.pos = end;
        Some(String::from_utf8_lossy(bytes).into_owned())
    }

    /// Parse what a backreference points at with `f`, then come back.
    fn backref<T>(&mut self, f: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        let target = usize::try_from(self.base62()?).ok()?;
        if target >= self.pos {
            return None;
        }
        let back = self.pos;
        self.pos = target;
        self.enter()?;
        let out = f(self);
        self.depth -= 1;
        self.pos = back;
        out
    }

    fn path(&mut self) -> Option<String> {
        self.enter()?;
        let out = match self.next()? {
            b'C' => {
                self.disambiguator()?;
                self.ident()
            }
            b'N' => {
                let ns = self.next()?;
                let parent = self.path()?;
                let dis = self.disambiguator()?;
                let name = self.ident()?;
                Some(match ns {
                    b'C' => format!("{parent}::{{closure#{dis}}}"),
                    b'S' => format!("{parent}::{{shim:{name}#{dis}}}"),
                    b'A'..=b'Z' => format!("{parent}::{{{}:{name}#{dis}}}", char::from(ns)),
                    _ => format!("{parent}::{name}"),
                })
            }
            b'M' => {
                self.disambiguator()?;
                let _impl_path = self.path()?;
                Some(format!("<{}>", self.ty()?))
            }
            b'X' => {
                self.disambiguator()?;
                let _impl_path = self.path()?;
                let ty = self.ty()?;
                Some(format!("<{ty} as {}>", self.path()?))
            }
            b'Y' => {
                let ty = self.ty()?;
                Some(format!("<{ty} as {}>", self.path()?))
            }
            b'I' => {
                let base = self.path()?;
                let args = self.generic_args()?;
                Some(format!("{base}::<{args}>"))
            }
            b'B' => self.backref(Self::path),
            _ => None,
        };
        self.depth -= 1;
        out
    }

    fn generic_args(&mut self) -> Option<String> {
        let mut args = Vec::new();
        while !self.eat(b'E') {
            if self.eat(b'L') {
                self.base62()?;
                continue; // lifetimes are not shown
            }
            if self.eat(b'K') {
                args.push(self.konst()?);
            } else {
                args.push(self.ty()?);
            }
        }
        Some(args.join(", "))
    }

    fn konst(&mut self) -> Option<String> {
        if self.eat(b'p') {
            return Some("_".into());
        }
        if self.eat(b'B') {
            return self.backref(Self::konst);
        }
        let ty = self.next()?;
        let negative = self.eat(b'n');
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
            self.pos += 1;
        }
        let hex = std::str::from_utf8(self.s.get(start..self.pos)?)
            .ok()?
            .to_string();
        if !self.eat(b'_') {
            return None;
        }
        let value = if hex.is_empty() {
            0
        } else {
            u128::from_str_radix(&hex, 16).ok()?
        };
        Some(match ty {
            b'b' => (value != 0).to_string(),
            b'c' => char::from_u32(u32::try_from(value).ok()?)
                .map_or(value.to_string(), |c| format!("{c:?}")),
            _ if negative => format!("-{value}"),
            _ => value.to_string(),
        })
    }

    fn basic(c: u8) -> Option<&'static str> {
        Some(match c {
            b'a' => "i8",
            b'b' => "bool",
            b'c' => "char",
            b'd' => "f64",
            b'e' => "str",
            b'f' => "f32",
            b'h' => "u8",
            b'i' => "isize",
            b'j' => "usize",
            b'l' => "i32",
            b'm' => "u32",
            b'n' => "i128",
            b'o' => "u128",
            b's' => "i16",
            b't' => "u16",
            b'u' => "()",
            b'v' => "...",
            b'x' => "i64",
            b'y' => "u64",
            b'z' => "!",
            b'p' => "_",
            _ => return None,
        })
    }

    fn ty(&mut self) -> Option<String> {
        self.enter()?;
        let c = self.peek()?;
        let out = if let Some(b) = Self::basic(c) {
            self.pos += 1;
            Some(b.to_string())
        } else {
            self.pos += 1;
            match c {
                b'A' => {
                    let t = self.ty()?;
                    Some(format!("[{t}; {}]", self.konst()?))
                }
                b'S' => Some(format!("[{}]", self.ty()?)),
                b'T' => {
                    let mut items = Vec::new();
                    while !self.eat(b'E') {
                        items.push(self.ty()?);
                    }
                    Some(match items.len() {
                        1 => format!("({},)", items[0]),
                        _ => format!("({})", items.join(", ")),
                    })
                }
                b'R' | b'Q' => {
                    if self.eat(b'L') {
                        self.base62()?;
                    }
                    let m = if c == b'Q' { "mut " } else { "" };
                    Some(format!("&{m}{}", self.ty()?))
                }
                b'P' => Some(format!("*const {}", self.ty()?)),
                b'O' => Some(format!("*mut {}", self.ty()?)),
                b'F' => self.fn_sig(),
                b'D' => self.dyn_bounds(),
                b'B' => self.backref(Self::ty),
                _ => {
                    self.pos -= 1;
                    self.path()
                }
            }
        };
        self.depth -= 1;
        out
    }

    fn fn_sig(&mut self) -> Option<String> {
        if self.eat(b'G') {
            self.base62()?;
        }
        let unsafety = if self.eat(b'U') { "unsafe " } else { "" };
        let abi = if self.eat(b'K') {
            if self.eat(b'C') {
                "extern \"C\" ".to_string()
            } else {
                format!("extern \"{}\" ", self.ident()?.replace('_', "-"))
            }
        } else {
            String::new()
        };
        let mut args = Vec::new();
        while !self.eat(b'E') {
            args.push(self.ty()?);
        }
        let ret = self.ty()?;
        let ret = if ret == "()" {
            String::new()
        } else {
            format!(" -> {ret}")
        };
        Some(format!("{unsafety}{abi}fn({}){ret}", args.join(", ")))
    }

    fn dyn_bounds(&mut self) -> Option<String> {
        if self.eat(b'G') {
            self.base62()?;
        }
        let mut traits = Vec::new();
        while !self.eat(b'E') {
            let mut t = self.path()?;
            let mut assoc = Vec::new();
            while self.eat(b'p') {
                let name = self.ident()?;
                assoc.push(format!("{name} = {}", self.ty()?));
            }
            if !assoc.is_empty() {
                t = format!("{t}<{}>", assoc.join(", "));
            }
            traits.push(t);
        }
        // The lifetime bound.
        if !self.eat(b'L') {
            return None;
        }
        self.base62()?;
        Some(format!("dyn {}", traits.join(" + ")))
    }
}

#[cfg(test)]
mod tests {
    use super::demangle;

    #[test]
    fn paths_impls_and_generics() {
        let d = |s| demangle(s).unwrap_or_else(|| panic!("{s}"));
        assert_eq!(
            d("_RNvNtCsaz6eC2DG7lh_3std2rt19lang_start_internal"),
            "std::rt::lang_start_internal"
        );
        assert_eq!(
            d("_RNvXsd_NtNtNtCs7BliBxkEZsN_4core3fmt3num3impyNtB9_7Display3fmt"),
            "<u64 as core::fmt::Display>::fmt"
        );
        assert_eq!(
            d("_RNvMsa_NtCs7BliBxkEZsN_4core3fmtNtB5_9Formatter12pad_integral"),
            "<core::fmt::Formatter>::pad_integral"
        );
        assert_eq!(
            d("_RNvCsfLfy6EI15iL_7___rustc11___rdl_alloc"),
            "__rustc::__rdl_alloc"
        );
        // From RFC 2603's examples: a closure and generic arguments.
        assert_eq!(d("_RNCNvC7mycrate3foo0"), "mycrate::foo::{closure#0}");
        assert_eq!(d("_RINvC7mycrate3fooTjhEE"), "mycrate::foo::<(usize, u8)>");
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert_eq!(demangle("main"), None);
        assert_eq!(demangle("_R"), None);
        assert_eq!(demangle("_RNvC3foo99x"), None);
        assert_eq!(demangle("_RB_"), None, "a backreference to itself");
        // Deep nesting ends, never overflows.
        let deep = format!("_R{}C3foo", "NvNv".repeat(200));
        assert_eq!(demangle(&deep), None);
        for cut in 0..60 {
            let s = "_RNvXsd_NtNtNtCs7BliBxkEZsN_4core3fmt3num3impyNtB9_7Display3fmt";
            let _ = demangle(&s[..cut.min(s.len())]);
        }
    }
}
