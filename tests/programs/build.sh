#!/usr/bin/env bash
# Builds the test programs into OUTDIR:
#   OUTDIR/<name>     each Rust program (src/bin/<name>.rs), static-pie musl
#   OUTDIR/c-<name>   each C program (c/<name>.c), gcc -static -O2 (glibc)
# Cargo's own build tree goes to OUTDIR/cargo. Idempotent: binaries are
# replaced (atomically, by rename) only when they changed. Concurrent runs on
# one OUTDIR are serialised with flock(1) on OUTDIR/.lock when available.
#
# Usage: tests/programs/build.sh OUTDIR
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"
target=x86_64-unknown-linux-musl

if command -v flock >/dev/null 2>&1; then
    exec 9>"$out/.lock"
    flock 9
fi

# Run from here so rustup finds the repository's rust-toolchain.toml.
cd "$here"

if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
        rustup target add "$target" >/dev/null 2>&1 || true
    fi
fi

# The guest runs these: baseline x86-64 code (SSE2, no AVX), whatever
# RUSTFLAGS or target-cpu the caller's environment or config carries.
export CARGO_ENCODED_RUSTFLAGS=""
unset CARGO_BUILD_TARGET CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR

"${CARGO:-cargo}" build --quiet --release --target "$target" \
    --manifest-path "$here/Cargo.toml" --target-dir "$out/cargo"

# Replace $2 by $1 only if they differ, by rename (never rewriting a file
# that may be running: ETXTBSY).
install_if_changed() {
    local src=$1 dst=$2
    if ! cmp -s "$src" "$dst"; then
        cp "$src" "$dst.tmp.$$"
        chmod 755 "$dst.tmp.$$"
        mv -f "$dst.tmp.$$" "$dst"
    fi
}

for src in "$here"/src/bin/*.rs; do
    name="$(basename "$src" .rs)"
    install_if_changed "$out/cargo/$target/release/$name" "$out/$name"
done

cc="${CC_FOR_PROGRAMS:-gcc}"
for src in "$here"/c/*.c; do
    name="c-$(basename "$src" .c)"
    if [[ ! -e "$out/$name" || "$src" -nt "$out/$name" || "$here/build.sh" -nt "$out/$name" ]]; then
        # A first-lines comment `/* cflags: ... */` adds flags (e.g. -nostdlib).
        extra="$(sed -n 's|^/\* cflags: \(.*\) \*/$|\1|p' "$src" | head -n 1)"
        # shellcheck disable=SC2086
        if ! "$cc" -static -O2 $extra -o "$out/$name.tmp.$$" "$src"; then
            rm -f "$out/$name.tmp.$$"
            echo "build.sh: '$cc -static' failed for $src; static glibc (libc.a) is in the Debian/Ubuntu package libc6-dev" >&2
            exit 1
        fi
        mv -f "$out/$name.tmp.$$" "$out/$name"
    fi
done
