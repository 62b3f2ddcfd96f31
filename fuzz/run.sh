#!/usr/bin/env bash
# Run the fuzz targets (all, or those named) for FUZZ_SECONDS each with
# cargo-fuzz (libFuzzer, AddressSanitizer, debug assertions on), each from
# its corpus in fuzz/corpus/<target>, first (re)written with the seeds of
# fuzz/examples/seeds.rs. `make fuzz` and `make fuzz-smoke` call this after
# installing cargo-fuzz and building the guest kernel (MOBIUS_GUEST_ELF: the
# host crate embeds it, and the seeds cut it down).
#
# Prints one line per target: libFuzzer's last status line (executions,
# cov: edges covered, ft: features, corp: corpus entries/size, exec/s).
# A target that crashes prints where its input went (fuzz/artifacts/<target>/)
# and the run ends non-zero after the others have run. Full logs:
# fuzz/logs/<target>.log.
#
# Environment: FUZZ_SECONDS (60), FUZZ_TOOLCHAIN (nightly), FUZZ_ARGS (more
# libFuzzer flags, e.g. -jobs=2 or -seed=1).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
toolchain=${FUZZ_TOOLCHAIN:-nightly}
if [ -z "${MOBIUS_GUEST_ELF:-}" ] || [ ! -f "$MOBIUS_GUEST_ELF" ]; then
    echo "fuzz/run.sh: MOBIUS_GUEST_ELF must name a built guest kernel (make fuzz does that)" >&2
    exit 2
fi
host=$(rustc "+$toolchain" -vV | sed -n 's/^host: //p')

cargo "+$toolchain" fuzz build --debug-assertions
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo "+$toolchain" fuzz list)
fi
cargo "+$toolchain" run --quiet --manifest-path fuzz/Cargo.toml --target "$host" \
    --example seeds -- fuzz/corpus

mkdir -p fuzz/logs
failed=()
for t in "${targets[@]}"; do
    # Inputs long enough for the largest frame (8192 bytes) and its serial
    # line (16 KiB of digits), and one byte more; libFuzzer's default is
    # the larger of 4096 and the largest seed.
    case $t in
        stats_frame | record_frame) len=(-max_len=8300) ;;
        stats_serial) len=(-max_len=16600) ;;
        *) len=() ;;
    esac
    log=fuzz/logs/$t.log
    mkdir -p "fuzz/corpus/$t" # targets without seeds start from nothing
    # shellcheck disable=SC2086
    if cargo "+$toolchain" fuzz run --debug-assertions "$t" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -print_final_stats=1 "${len[@]}" ${FUZZ_ARGS:-} >"$log" 2>&1; then
        status=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
        printf '%-15s %s\n' "$t" "${status:-(no DONE line: see $log)}"
    else
        failed+=("$t")
        printf '%-15s FAILED, see %s\n' "$t" "$log"
        grep -E "panicked at|^(  left|  right|assertion)|ERROR: |Test unit written" "$log" | head -n 8 | sed 's/^/    /'
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: crashes in: ${failed[*]} (inputs in fuzz/artifacts/; reproduce with cargo +$toolchain fuzz run TARGET INPUT)" >&2
    exit 1
fi
