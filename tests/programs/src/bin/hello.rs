//! `hello [ARG...]`: prints `hello, world`, then `argv[i]=ARG` for each
//! argument (i from 1), then `HELLO_ENV=VALUE` if that variable is set.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;

fn main() {
    let mut out = std::io::stdout().lock();
    let mut text = b"hello, world\n".to_vec();
    for (i, arg) in std::env::args_os().enumerate().skip(1) {
        text.extend_from_slice(format!("argv[{i}]=").as_bytes());
        text.extend_from_slice(arg.as_bytes());
        text.push(b'\n');
    }
    if let Some(v) = std::env::var_os("HELLO_ENV") {
        text.extend_from_slice(b"HELLO_ENV=");
        text.extend_from_slice(v.as_bytes());
        text.push(b'\n');
    }
    if let Err(e) = out.write_all(&text).and_then(|()| out.flush()) {
        mobius_test_programs::die("hello", &format!("write to stdout: {e}"));
    }
}
