//! The launcher's run loop under KVM, driven by tiny hand-assembled test
//! kernels (see common/elf.rs): serial output, exit statuses, crashes,
//! timeout, signals, unknown accesses, the discard port, both entries.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::elf::{self, ElfSpec};
use common::{kvm_or_skip, run, stderr, stdout, Scratch};
use mobius_shared::exit::host;

fn boot(s: &Scratch, code: Vec<u8>, extra: &[&str]) -> std::process::Output {
    let p = s.kernel("k.elf", &ElfSpec::new(code));
    let mut args = vec!["run", "--kernel", p.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn prints_and_exits_in_both_boot_modes() {
    if !kvm_or_skip("prints_and_exits_in_both_boot_modes") {
        return;
    }
    let s = Scratch::new();
    for mode in ["long", "pvh"] {
        let o = boot(
            &s,
            elf::print_and_exit("hello, test\n", 0),
            &["--boot", mode],
        );
        assert_eq!(o.status.code(), Some(0), "{mode}: {}", stderr(&o));
        assert_eq!(stdout(&o), "hello, test\n", "{mode}");
        assert_eq!(stderr(&o), "", "{mode}");
    }
}

#[test]
fn guest_status_becomes_exit_status() {
    if !kvm_or_skip("guest_status_becomes_exit_status") {
        return;
    }
    let s = Scratch::new();
    for status in [1u32, 7, 63] {
        let o = boot(&s, elf::print_and_exit("", status), &[]);
        assert_eq!(o.status.code(), Some(status as i32), "{}", stderr(&o));
    }
}

#[test]
fn status_above_range_is_a_crash() {
    if !kvm_or_skip("status_above_range_is_a_crash") {
        return;
    }
    let s = Scratch::new();
    let o = boot(&s, elf::print_and_exit("", 64), &[]);
    assert_eq!(o.status.code(), Some(host::GUEST_CRASH));
    assert!(stderr(&o).contains("status 64"), "{}", stderr(&o));
}

#[test]
fn hlt_without_status_is_a_crash() {
    if !kvm_or_skip("hlt_without_status_is_a_crash") {
        return;
    }
    let s = Scratch::new();
    let o = boot(&s, elf::halt(), &["--timeout", "20s"]);
    assert_eq!(o.status.code(), Some(host::GUEST_CRASH));
    assert!(stderr(&o).contains("HLT"), "{}", stderr(&o));
}

#[test]
fn hlt_waiting_for_an_interrupt_that_cannot_come_is_a_crash() {
    if !kvm_or_skip("hlt_waiting_for_an_interrupt_that_cannot_come_is_a_crash") {
        return;
    }
    let s = Scratch::new();
    // IF=1, APIC timer off: with KVM's APIC the vCPU sleeps inside KVM_RUN,
    // and the halt watch must still see that it never wakes.
    let o = boot(&s, elf::halt_with_interrupts_on(), &["--timeout", "20s"]);
    assert_eq!(o.status.code(), Some(host::GUEST_CRASH), "{}", stderr(&o));
    assert!(stderr(&o).contains("HLT"), "{}", stderr(&o));
    assert!(stderr(&o).contains("rflags=0x202"), "{}", stderr(&o));
}

#[test]
fn hlt_waiting_for_the_apic_timer_is_left_to_wait() {
    if !kvm_or_skip("hlt_waiting_for_the_apic_timer_is_left_to_wait") {
        return;
    }
    let s = Scratch::new();
    // 200 ms of timer: some twenty halt-watch ticks see the vCPU halted with
    // the timer armed and must let it be. When the timer fires, the
    // interrupt finds no IDT: a triple fault, not a halt.
    let o = boot(
        &s,
        elf::apic_timer_then_halt(200_000_000),
        &["--timeout", "20s"],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(host::GUEST_CRASH), "{err}");
    assert!(err.contains("triple fault"), "{err}");
    assert!(!err.contains("HLT"), "{err}");
}

#[test]
fn triple_fault_reports_registers() {
    if !kvm_or_skip("triple_fault_reports_registers") {
        return;
    }
    let s = Scratch::new();
    for mode in ["long", "pvh"] {
        let o = boot(&s, elf::triple_fault(), &["--boot", mode]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(host::GUEST_CRASH), "{err}");
        assert!(err.contains("triple fault"), "{err}");
        assert!(err.contains("rip=0x0000000000100000"), "{err}");
        assert!(err.contains("cr0="), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn timeout_stops_a_spinning_guest() {
    if !kvm_or_skip("timeout_stops_a_spinning_guest") {
        return;
    }
    let s = Scratch::new();
    let o = boot(&s, elf::spin(), &["--timeout", "300ms"]);
    assert_eq!(o.status.code(), Some(host::TIMEOUT));
    let err = stderr(&o);
    assert!(
        err.starts_with("mobius: error: ") && err.contains("--timeout 300ms"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn halt_watch_ticks_are_counted_apart_from_signals() {
    if !kvm_or_skip("halt_watch_ticks_are_counted_apart_from_signals") {
        return;
    }
    let s = Scratch::new();
    // 300 ms of a running guest: some thirty ticks, each a KVM_RUN cut short,
    // shown as their own exit reason; `interrupted` is the timeout's one kick.
    let o = boot(&s, elf::spin(), &["--timeout", "300ms", "--timings"]);
    let err = stderr(&o);
    let ticks = err
        .split_whitespace()
        .find_map(|w| w.strip_prefix("halt_watch="))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(ticks.is_some_and(|n| n >= 5), "{err}");
    // The timeout's kick is one signal: counted once when it cuts a
    // KVM_RUN short, not at all when it lands between two runs (the loop
    // then sees the deadline itself). Never one per tick.
    let interrupted = err
        .split_whitespace()
        .find_map(|w| w.strip_prefix("interrupted="))
        .map_or(Some(0), |n| n.parse::<u64>().ok());
    assert!(interrupted.is_some_and(|n| n <= 1), "{err}");
}

#[test]
fn sigint_and_sigterm_stop_the_guest() {
    if !kvm_or_skip("sigint_and_sigterm_stop_the_guest") {
        return;
    }
    let s = Scratch::new();
    let p = s.kernel("k.elf", &ElfSpec::new(elf::print_then_spin("ready\n")));
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let mut child = common::mobius()
            .args(["run", "--kernel", p.to_str().unwrap(), "--timeout", "60s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // The guest prints once it runs; by then the handlers are installed.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n");
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
        let o = child.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(host::INTERRUPTED),
            "signal {sig}: {}",
            stderr(&o)
        );
        assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
    }
}

#[test]
fn unknown_port_and_mmio_warn_once_and_read_ones() {
    if !kvm_or_skip("unknown_port_and_mmio_warn_once_and_read_ones") {
        return;
    }
    let s = Scratch::new();
    for mode in ["long", "pvh"] {
        let o = boot(
            &s,
            elf::touch_unknown_then(0xe000_0000, "ok\n"),
            &["--boot", mode, "--timings"],
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{mode}: {err}");
        assert_eq!(stdout(&o), "ok\n");
        assert!(err.contains("unknown port 0x80"), "{err}");
        assert!(err.contains("unknown MMIO address 0xe0000000"), "{err}");
        assert!(err.contains("unknown_io=2"), "{err}");
        assert!(err.contains("unknown_mmio=1"), "{err}");
    }
}

#[test]
fn a_flood_of_distinct_unknown_accesses_warns_once_per_kind_and_sums_up() {
    if !kvm_or_skip("a_flood_of_distinct_unknown_accesses_warns_once_per_kind_and_sums_up") {
        return;
    }
    let s = Scratch::new();
    let n = 5000;
    for mode in ["long", "pvh"] {
        let code = elf::flood_unknown_then(n, "ok\n");
        let o = boot(&s, code, &["--boot", mode, "--timings"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{mode}: {err}");
        assert_eq!(stdout(&o), "ok\n");
        assert_eq!(err.matches("to unknown port 0x").count(), 1, "{err}");
        assert_eq!(err.matches("unknown MMIO address").count(), 1, "{err}");
        assert!(
        err.contains(&format!(
            "{} more guest accesses like those above were not reported (unknown port writes {}, unknown MMIO reads {})",
            2 * (n - 1),
            n - 1,
            n - 1
        )),
        "{err}"
    );
        assert!(err.contains(&format!("unknown_io={n}")), "{err}");
        assert!(err.lines().count() <= 4, "{err}");
    }
}

#[test]
fn discard_port_inside_and_outside_ram() {
    if !kvm_or_skip("discard_port_inside_and_outside_ram") {
        return;
    }
    let s = Scratch::new();
    // Frame 0x200 (2 MiB) is RAM; 0x100000 (4 GiB) and u32::MAX are not.
    let o = boot(
        &s,
        elf::discard_then(&[0x200, 0x10_0000, u32::MAX], "done\n"),
        &["--memory", "16M"],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(stdout(&o), "done\n");
    assert!(err.contains("outside guest RAM"), "{err}");
    assert_eq!(
        err.matches("outside guest RAM").count(),
        1,
        "warned once: {err}"
    );
}

#[test]
fn console_write_port_prints_and_refuses_bad_buffers() {
    if !kvm_or_skip("console_write_port_prints_and_refuses_bad_buffers") {
        return;
    }
    let s = Scratch::new();
    // 16 MiB of RAM: 0x100_0000 is just past it, u32::MAX far past it.
    let code = elf::console_write_then("line one\n", &[0x100_0000, 0xff_fffe, u32::MAX], 5000);
    let o = boot(&s, code, &["--memory", "16M"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(stdout(&o), "line one\n");
    assert_eq!(
        err.matches("not inside guest RAM").count(),
        1,
        "warned once: {err}"
    );
    assert!(
        err.contains("5000 bytes, more than the 4096 allowed"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn timings_are_reported() {
    if !kvm_or_skip("timings_are_reported") {
        return;
    }
    let s = Scratch::new();
    let o = boot(&s, elf::print_and_exit("x", 0), &["--timings"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    for key in [
        "vm_memory=",
        "load=",
        "vcpu=",
        "first_run_to_output=",
        "total=",
        "process=",
    ] {
        assert!(err.contains(key), "{key} missing: {err}");
    }
}
