//! `upper`: copies standard input to standard output in upper case (ASCII),
//! then prints `upper: N bytes` on standard error.

use std::io::{Read, Write};

fn main() {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        mobius_test_programs::die("upper", &format!("read stdin: {e}"));
    }
    let out: Vec<u8> = input.iter().map(u8::to_ascii_uppercase).collect();
    let mut o = std::io::stdout().lock();
    if o.write_all(&out).and_then(|()| o.flush()).is_err() {
        mobius_test_programs::die("upper", "write stdout");
    }
    eprintln!("upper: {} bytes", input.len());
}
