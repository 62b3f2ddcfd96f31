//! Pipes: a bounded byte queue between a read end and a write end.
//!
//! Each end is an open file (shared by `dup` and inherited by children);
//! when the last reference to an end goes, the pipe counts it closed and
//! wakes the other side: readers then see end of file, writers `EPIPE`.
//! Blocking and waking go through the scheduler ([`crate::proc::task`]);
//! this module only keeps the bytes and the counts.
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicUsize, Ordering};

use spin::Mutex;

/// Bytes a pipe holds (Linux's default pipe size).
pub const CAPACITY: usize = 64 * 1024;
/// Writes of at most this many bytes are atomic (`PIPE_BUF`).
pub const PIPE_BUF: usize = 4096;

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// The shared state of one pipe.
pub struct Pipe {
    /// Identifies the pipe to the threads blocked on it.
    pub id: usize,
    state: Mutex<State>,
}

struct State {
    buf: VecDeque<u8>,
    readers: usize,
    writers: usize,
}

/// What a read found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadResult {
    /// These many bytes were taken.
    Data(usize),
    /// Empty, and no writer is left: end of file.
    Eof,
    /// Empty; a writer may still write.
    WouldBlock,
}

/// What a write did.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteResult {
    /// These many bytes were queued.
    Written(usize),
    /// No reader is left (`EPIPE`, `SIGPIPE`).
    Broken,
    /// No room now.
    WouldBlock,
}

impl Pipe {
    /// A new pipe with one read end and one write end open.
    pub fn new() -> Arc<Pipe> {
        Arc::new(Pipe {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            state: Mutex::new(State {
                buf: VecDeque::new(),
                readers: 1,
                writers: 1,
            }),
        })
    }

    /// Take up to `out.len()` bytes.
    pub fn read(&self, out: &mut [u8]) -> ReadResult {
        let mut s = self.state.lock();
        if s.buf.is_empty() {
            return if s.writers == 0 {
                ReadResult::Eof
            } else {
                ReadResult::WouldBlock
            };
        }
        let n = out.len().min(s.buf.len());
        // Two slice copies (memcpy), not a loop per byte: on kvm_pvm every
        // kernel instruction is emulated.
        let (a, b) = s.buf.as_slices();
        let first = n.min(a.len());
        out[..first].copy_from_slice(&a[..first]);
        out[first..n].copy_from_slice(&b[..n - first]);
        s.buf.drain(..n);
        ReadResult::Data(n)
    }

    /// Bytes queued now (for sizing a read buffer; may change at once).
    pub fn queued(&self) -> usize {
        self.state.lock().buf.len()
    }

    /// Queue as much of `data` as fits; a write of at most [`PIPE_BUF`]
    /// bytes goes in whole or not at all.
    pub fn write(&self, data: &[u8]) -> WriteResult {
        self.write_within(data, true)
    }

    /// [`Self::write`], where the buffer may take more kernel memory only
    /// when `may_grow` (the kernel heap is not short) and the allocation
    /// succeeds; otherwise the pipe is as full as its buffer is now.
    pub fn write_within(&self, data: &[u8], may_grow: bool) -> WriteResult {
        let mut s = self.state.lock();
        if s.readers == 0 {
            return WriteResult::Broken;
        }
        let len = s.buf.len();
        let wanted = (CAPACITY - len).min(data.len());
        if may_grow {
            // On failure the pipe has only the room its buffer has.
            let _ = s.buf.try_reserve(wanted);
        }
        let room = s.buf.capacity().min(CAPACITY).saturating_sub(len);
        if room == 0 || (data.len() <= PIPE_BUF && room < data.len()) {
            return WriteResult::WouldBlock;
        }
        let n = room.min(data.len());
        s.buf.extend(&data[..n]);
        WriteResult::Written(n)
    }

    /// Bytes waiting, whether a writer is left, whether a reader is left.
    pub fn status(&self) -> (usize, bool, bool) {
        let s = self.state.lock();
        (s.buf.len(), s.writers > 0, s.readers > 0)
    }

    /// One end was closed for good.
    pub fn close(&self, write_end: bool) {
        let mut s = self.state.lock();
        if write_end {
            s.writers = s.writers.saturating_sub(1);
        } else {
            s.readers = s.readers.saturating_sub(1);
        }
    }
}

/// One end of a pipe as an open file; closing it (dropping the last
/// reference) tells the pipe and calls `on_close` so the scheduler can wake
/// the other side.
pub struct PipeEnd {
    pub pipe: Arc<Pipe>,
    pub write: bool,
    on_close: fn(usize),
}

impl PipeEnd {
    /// The two ends of a new pipe: (read, write).
    pub fn pair(on_close: fn(usize)) -> (PipeEnd, PipeEnd) {
        let pipe = Pipe::new();
        (
            PipeEnd {
                pipe: pipe.clone(),
                write: false,
                on_close,
            },
            PipeEnd {
                pipe,
                write: true,
                on_close,
            },
        )
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        self.pipe.close(self.write);
        (self.on_close)(self.pipe.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nothing(_: usize) {}

    #[test]
    fn bytes_come_out_in_order_then_eof_after_the_writer_closes() {
        let (r, w) = PipeEnd::pair(nothing);
        assert_eq!(w.pipe.write(b"hello"), WriteResult::Written(5));
        let mut out = [0u8; 3];
        assert_eq!(r.pipe.read(&mut out), ReadResult::Data(3));
        assert_eq!(&out, b"hel");
        assert_eq!(r.pipe.read(&mut out), ReadResult::Data(2));
        assert_eq!(r.pipe.read(&mut out), ReadResult::WouldBlock);
        drop(w);
        assert_eq!(r.pipe.read(&mut out), ReadResult::Eof);
    }

    #[test]
    fn writes_stop_at_capacity_and_break_without_readers() {
        let (r, w) = PipeEnd::pair(nothing);
        let big = alloc::vec![7u8; CAPACITY + 10];
        assert_eq!(w.pipe.write(&big), WriteResult::Written(CAPACITY));
        assert_eq!(w.pipe.write(b"x"), WriteResult::WouldBlock);
        let mut out = alloc::vec![0u8; 100];
        assert_eq!(r.pipe.read(&mut out), ReadResult::Data(100));
        // 100 bytes of room: a 200-byte (≤ PIPE_BUF) write must wait whole.
        assert_eq!(w.pipe.write(&[1u8; 200]), WriteResult::WouldBlock);
        drop(r);
        assert_eq!(w.pipe.write(b"x"), WriteResult::Broken);
    }

    #[test]
    fn a_pipe_that_may_not_grow_takes_only_the_room_it_has() {
        let (r, w) = PipeEnd::pair(nothing);
        assert_eq!(w.pipe.write_within(b"x", false), WriteResult::WouldBlock);
        assert_eq!(w.pipe.write_within(b"hello", true), WriteResult::Written(5));
        let mut out = [0u8; 5];
        assert_eq!(r.pipe.read(&mut out), ReadResult::Data(5));
        // The buffer keeps its allocation: that much fits without growing.
        let room = w.pipe.state.lock().buf.capacity().min(CAPACITY);
        assert!(room >= 5);
        assert_eq!(
            w.pipe.write_within(&alloc::vec![1u8; room], false),
            WriteResult::Written(room)
        );
        assert_eq!(w.pipe.write_within(b"y", false), WriteResult::WouldBlock);
    }

    #[test]
    fn closing_calls_back_with_the_pipe_id() {
        static CLOSED: AtomicUsize = AtomicUsize::new(0);
        fn note(id: usize) {
            CLOSED.store(id, Ordering::SeqCst);
        }
        let (r, w) = PipeEnd::pair(note);
        let id = r.pipe.id;
        drop(w);
        assert_eq!(CLOSED.load(Ordering::SeqCst), id);
        drop(r);
    }
}
