//! The vCPU run loop: KVM_RUN, then dispatch the exit, until the guest stops
//! or the supervisor asks it to.

use std::time::Instant;

use kvm_ioctls::{VcpuExit, VcpuFd};
use mobius_shared::exit::GUEST_STATUS_MAX;
use mobius_shared::ports::{COM1, CONSOLE_WRITE, DEBUG_EXIT, DISCARD_FRAME};
use vm_memory::GuestMemoryMmap;

use super::exits::ExitCounts;
use super::warnings::{GuestWarning, GuestWarnings};
use crate::devices::console::{read_console_write, ConsoleWriteError};
use crate::devices::discard::{discard_frame, Discard};
use crate::devices::serial::{SerialPort, SERIAL_PORTS};
use crate::devices::MmioBus;

/// How the vCPU stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VcpuStop {
    /// The guest wrote `status` (<= GUEST_STATUS_MAX) to the debug-exit port.
    Exit(u32),
    /// The guest crashed; the text says how (may span lines).
    Crash(String),
    /// A signal asked the loop to stop (timeout timer, SIGINT, SIGTERM).
    Stopped,
    /// KVM_RUN failed with an unexpected error.
    RunError(String),
}

/// What the run loop hands back.
#[derive(Debug)]
pub struct VcpuReport {
    pub stop: VcpuStop,
    pub exits: ExitCounts,
    pub first_run: Instant,
    pub first_output: Option<Instant>,
    pub done: Instant,
    /// KVM's binary per-vCPU statistics at the end (empty if not offered).
    pub kvm_stats: Vec<(String, u64)>,
}

/// Everything the loop needs; it runs on the calling thread.
pub struct VcpuRunner {
    pub vcpu: VcpuFd,
    pub memory: GuestMemoryMmap,
    pub ram_size: u64,
    pub serial: SerialPort,
    pub mmio: MmioBus,
    /// Read KVM's binary statistics when the guest stops.
    pub read_kvm_stats: bool,
    /// The last halt-watch tick found the vCPU halted for good; a second
    /// one in a row ends the run (see [`super::halt`]).
    halt_seen: bool,
    exits: ExitCounts,
    /// Warnings about the guest, within their budget (see [`super::warnings`]).
    warnings: GuestWarnings,
    /// Guest threads' extended register state (the XSTATE port).
    xstate: crate::devices::xstate::XstateSlots,
}

impl VcpuRunner {
    pub fn new(
        vcpu: VcpuFd,
        memory: GuestMemoryMmap,
        ram_size: u64,
        serial: SerialPort,
        mmio: MmioBus,
    ) -> Self {
        VcpuRunner {
            vcpu,
            memory,
            ram_size,
            serial,
            mmio,
            read_kvm_stats: false,
            halt_seen: false,
            exits: ExitCounts::default(),
            warnings: GuestWarnings::default(),
            xstate: crate::devices::xstate::XstateSlots::default(),
        }
    }

    /// Run until the guest stops or a signal (timeout timer, SIGINT,
    /// SIGTERM; see [`super::signal`]) asks the loop to stop.
    pub fn run(mut self) -> VcpuReport {
        let immediate_exit = std::ptr::addr_of_mut!(self.vcpu.get_kvm_run().immediate_exit);
        // SAFETY: the byte is in this vCPU's kvm_run mapping, which lives as
        // long as `self.vcpu`, beyond the guard (dropped at the end of `run`).
        let guard = unsafe { super::signal::VcpuGuard::new(immediate_exit) };
        self.xstate.capture_reset(&self.vcpu);
        let first_run = Instant::now();
        let stop = loop {
            if super::signal::stop_requested().is_some() || super::signal::timed_out() {
                break VcpuStop::Stopped;
            }
            if let Some(stop) = self.run_once() {
                break stop;
            }
        };
        drop(guard);
        self.serial.flush();
        if let Some(summary) = self.warnings.summary() {
            eprintln!("{summary}");
        }
        VcpuReport {
            stop,
            exits: self.exits,
            first_run,
            first_output: self.serial.first_byte(),
            done: Instant::now(),
            kvm_stats: if self.read_kvm_stats {
                super::kvm_stats::read(&self.vcpu)
            } else {
                Vec::new()
            },
        }
    }

    fn run_once(&mut self) -> Option<VcpuStop> {
        let exit = match self.vcpu.run() {
            Ok(exit) => exit,
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                // A signal: the loop looks at why; enter again only if it
                // was not for us (immediate_exit would refuse every entry).
                self.vcpu.set_kvm_immediate_exit(0);
                if !super::signal::take_watch_tick() {
                    self.exits.interrupted += 1;
                    return None;
                }
                // Ticks come only when KVM emulates the APIC (the halt
                // watch is armed then, see `run_vm`): HLT stays inside
                // KVM_RUN, and a tick is when the loop looks for it.
                self.exits.halt_watch += 1;
                let halted = super::halt::halted_for_good(&self.vcpu);
                if halted && self.halt_seen {
                    return Some(self.halted());
                }
                self.halt_seen = halted;
                return None;
            }
            Err(e) => return Some(VcpuStop::RunError(format!("KVM_RUN failed: {e}"))),
        };
        // The guest ran: whatever a halt-watch tick saw is stale.
        self.halt_seen = false;
        match exit {
            VcpuExit::IoOut(port, data) => {
                self.exits.io_out += 1;
                // One access is at most 4 bytes; a string OUT repeats them.
                let value = data
                    .iter()
                    .take(4)
                    .rev()
                    .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
                if port == COM1 {
                    // A string OUT (`rep outsb`) to the transmit register is
                    // one exit carrying every byte: send them all, in order.
                    for &b in data.iter() {
                        self.serial.write(0, b);
                    }
                } else if (COM1..COM1 + SERIAL_PORTS).contains(&port) {
                    if let Some(&b) = data.first() {
                        self.serial.write((port - COM1) as u8, b);
                    }
                } else if port == DEBUG_EXIT {
                    return Some(if value <= u64::from(GUEST_STATUS_MAX) {
                        VcpuStop::Exit(value as u32)
                    } else if let Some(status) = mobius_shared::exit::program_status(value) {
                        VcpuStop::Exit(status)
                    } else {
                        VcpuStop::Crash(format!(
                            "guest reported status {value}, above the largest guest status {GUEST_STATUS_MAX}"
                        ))
                    });
                } else if port == DISCARD_FRAME {
                    self.discard(value);
                } else if port == CONSOLE_WRITE {
                    self.console_write(value);
                } else if port == mobius_shared::ports::CONSOLE_WRITE_ERR {
                    self.console_write_err(value);
                } else if port == mobius_shared::ports::CONSOLE_READ {
                    self.console_read(value);
                } else if port == mobius_shared::ports::XSTATE {
                    if let Err(e) = self.xstate.handle(&self.vcpu, value as u32) {
                        self.warnings
                            .warn(GuestWarning::BadXstate, || e.to_string());
                    }
                } else {
                    self.exits.unknown_io += 1;
                    self.warnings.warn(GuestWarning::UnknownPortWrite, || {
                        format!("guest wrote {value:#x} to unknown port {port:#x}")
                    });
                }
            }
            VcpuExit::IoIn(port, data) => {
                self.exits.io_in += 1;
                if (COM1..COM1 + SERIAL_PORTS).contains(&port) {
                    let v = self.serial.read((port - COM1) as u8);
                    data.fill(0);
                    data[0] = v;
                } else {
                    data.fill(0xff);
                    if port != DEBUG_EXIT && port != DISCARD_FRAME && port != CONSOLE_WRITE {
                        self.exits.unknown_io += 1;
                        self.warnings.warn(GuestWarning::UnknownPortRead, || {
                            format!("guest read unknown port {port:#x}")
                        });
                    }
                }
            }
            VcpuExit::MmioRead(addr, data) => {
                self.exits.mmio_read += 1;
                if !self.mmio.read(addr, data) {
                    data.fill(0xff);
                    self.exits.unknown_mmio += 1;
                    self.warnings.warn(GuestWarning::UnknownMmioRead, || {
                        format!("guest read unknown MMIO address {addr:#x}")
                    });
                }
            }
            VcpuExit::MmioWrite(addr, data) => {
                self.exits.mmio_write += 1;
                if !self.mmio.write(addr, data) {
                    self.exits.unknown_mmio += 1;
                    self.warnings.warn(GuestWarning::UnknownMmioWrite, || {
                        format!("guest wrote unknown MMIO address {addr:#x}")
                    });
                }
            }
            VcpuExit::Hlt => return Some(self.halted()),
            VcpuExit::Shutdown => {
                self.exits.shutdown += 1;
                return Some(VcpuStop::Crash(format!(
                    "guest shut down (triple fault)\n{}",
                    self.describe_state()
                )));
            }
            VcpuExit::FailEntry(reason, cpu) => {
                self.exits.other += 1;
                return Some(VcpuStop::Crash(format!(
                    "KVM could not enter the guest: hardware entry failure reason {reason:#x} on vCPU {cpu}\n{}",
                    self.describe_state()
                )));
            }
            VcpuExit::InternalError => {
                self.exits.other += 1;
                let run = self.vcpu.get_kvm_run();
                // SAFETY: the exit reason is KVM_EXIT_INTERNAL_ERROR, so the
                // `internal` member of the kvm_run union is the valid one.
                let internal = unsafe { run.__bindgen_anon_1.internal };
                let n = (internal.ndata as usize).min(internal.data.len());
                let data: Vec<String> = internal.data[..n]
                    .iter()
                    .map(|d| format!("{d:#x}"))
                    .collect();
                return Some(VcpuStop::Crash(format!(
                    "KVM internal error: suberror {} (data: [{}])\n{}",
                    internal.suberror,
                    data.join(", "),
                    self.describe_state()
                )));
            }
            VcpuExit::Intr => {
                self.exits.interrupted += 1;
            }
            other => {
                self.exits.other += 1;
                let what = format!("{other:?}");
                self.warnings.warn(GuestWarning::UnexpectedExit, || {
                    format!("unexpected VM exit {what}; resuming")
                });
            }
        }
        None
    }

    /// The guest halted and nothing will wake it.
    fn halted(&mut self) -> VcpuStop {
        self.exits.hlt += 1;
        VcpuStop::Crash(format!(
            "guest halted (HLT) without reporting a status\n{}",
            self.describe_state()
        ))
    }

    fn console_write(&mut self, addr: u64) {
        match read_console_write(&self.memory, self.ram_size, addr) {
            Ok(bytes) => self.serial.write_text(&bytes),
            Err(e) => self.bad_console_write(e),
        }
    }

    fn bad_console_write(&mut self, e: ConsoleWriteError) {
        self.exits.bad_console_write += 1;
        let kind = match e {
            ConsoleWriteError::TooLong { .. } => GuestWarning::ConsoleTooLong,
            ConsoleWriteError::OutOfRange { .. } => GuestWarning::ConsoleOutsideRam,
        };
        self.warnings.warn(kind, || format!("{e}; ignored"));
    }

    /// The guest program reads our standard input (the guest waits).
    fn console_read(&mut self, addr: u64) {
        self.serial.flush();
        let stopping = || super::signal::stop_requested().is_some() || super::signal::timed_out();
        let mut stdin = std::io::stdin().lock();
        if let Err(e) =
            crate::devices::stdin::serve(&self.memory, self.ram_size, addr, &mut stdin, &stopping)
        {
            self.warnings
                .warn(GuestWarning::ConsoleOutsideRam, || format!("{e}; ignored"));
        }
    }

    /// The guest program's standard error: straight to ours.
    fn console_write_err(&mut self, addr: u64) {
        use std::io::Write;
        match read_console_write(&self.memory, self.ram_size, addr) {
            Ok(bytes) => {
                self.serial.flush();
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(&bytes);
                let _ = err.flush();
            }
            Err(e) => self.bad_console_write(e),
        }
    }

    fn discard(&mut self, pfn: u64) {
        match discard_frame(&self.memory, self.ram_size, pfn) {
            Discard::Done => {}
            Discard::OutOfRange => {
                self.exits.bad_discard += 1;
                self.warnings.warn(GuestWarning::DiscardOutsideRam, || {
                    format!("guest asked to discard frame {pfn:#x} outside guest RAM; ignored")
                });
            }
            Discard::Failed(errno) => self.warnings.warn(GuestWarning::DiscardFailed, || {
                format!(
                    "discarding guest frame {pfn:#x} failed: {}",
                    std::io::Error::from_raw_os_error(errno)
                )
            }),
        }
    }

    /// Registers, for crash reports.
    fn describe_state(&self) -> String {
        let mut s = String::new();
        match self.vcpu.get_regs() {
            Ok(r) => {
                s += &format!(
                    "  rip={:#018x} rsp={:#018x} rbp={:#018x} rflags={:#x}\n",
                    r.rip, r.rsp, r.rbp, r.rflags
                );
                s += &format!(
                    "  rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}\n",
                    r.rax, r.rbx, r.rcx, r.rdx
                );
                s += &format!(
                    "  rsi={:#018x} rdi={:#018x} r8 ={:#018x} r9 ={:#018x}\n",
                    r.rsi, r.rdi, r.r8, r.r9
                );
                s += &format!(
                    "  r10={:#018x} r11={:#018x} r12={:#018x} r13={:#018x}\n",
                    r.r10, r.r11, r.r12, r.r13
                );
                s += &format!("  r14={:#018x} r15={:#018x}\n", r.r14, r.r15);
            }
            Err(e) => s += &format!("  (registers unavailable: {e})\n"),
        }
        match self.vcpu.get_sregs() {
            Ok(sr) => {
                s += &format!(
                    "  cr0={:#x} cr2={:#x} cr3={:#x} cr4={:#x} efer={:#x} cs={:#x} ss={:#x}",
                    sr.cr0, sr.cr2, sr.cr3, sr.cr4, sr.efer, sr.cs.selector, sr.ss.selector
                );
            }
            Err(e) => s += &format!("  (system registers unavailable: {e})"),
        }
        s
    }
}
