//! The log sink: lines are appended to a shared buffer and a writer thread moves them to
//! stderr in batches, every [`LINGER`] while lines keep coming.
//!
//! Why not a channel with a writer thread per line (tracing-appender): measured with
//! `strace` at one request at a time, every access-log line woke the writer thread, which
//! wrote it, spun through four `sched_yield`s and slept again — seven system calls and two
//! context switches per request on the core that serves it — and the access-log line is
//! written before the response leaves, so that cost sat on every request's latency and on
//! every stream's first token. Here a line costs a mutex and a copy. While lines keep
//! coming the writer wakes on its own timer and no logger ever signals it; after
//! [`IDLE_BEFORE_SLEEP`] without lines it sleeps until the next line signals it once.
//!
//! Nothing is dropped: when stderr cannot keep up and the buffer reaches [`MAX_BUFFERED`],
//! loggers wait for the writer. Dropping the [`FlushGuard`] writes everything still buffered.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the first line of a batch may wait for company.
const LINGER: Duration = Duration::from_millis(20);
/// A batch this large is written at once.
const FLUSH_BYTES: usize = 64 << 10;
/// Loggers wait for the writer beyond this.
const MAX_BUFFERED: usize = 8 << 20;
/// Empty batches before the writer stops waking on its timer.
const IDLE_BEFORE_SLEEP: u32 = 50;

#[derive(Default)]
struct State {
    lines: Vec<u8>,
    closed: bool,
    /// The writer waits for a signal rather than its timer: the next line must wake it.
    writer_asleep: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Signals the writer: a line arrived while it slept, the buffer grew past
    /// [`FLUSH_BYTES`], or the sink closed.
    to_writer: Condvar,
    /// Signals waiting loggers that the buffer was taken.
    drained: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The [`MakeWriter`] handed to the subscriber. Cheap to clone.
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
}

/// Flushes and stops the writer thread when dropped.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A sink writing to `output` (stderr in production) from its own thread.
pub fn batched(output: impl Write + Send + 'static) -> (BatchedWriter, FlushGuard) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        to_writer: Condvar::new(),
        drained: Condvar::new(),
    });
    let writer = shared.clone();
    let thread = std::thread::Builder::new()
        .name("switchboard-log".into())
        .spawn(move || write_batches(&writer, output))
        .ok();
    let guard = FlushGuard {
        shared: shared.clone(),
        thread,
    };
    (BatchedWriter { shared }, guard)
}

fn write_batches(shared: &Shared, mut output: impl Write) {
    let mut spare = Vec::new();
    let mut idle_batches = 0;
    loop {
        let mut state = shared.lock();
        if state.lines.is_empty() && !state.closed && idle_batches >= IDLE_BEFORE_SLEEP {
            state.writer_asleep = true;
            while state.writer_asleep && !state.closed {
                state = wait(&shared.to_writer, state);
            }
            idle_batches = 0;
        }
        if !state.closed && state.lines.len() < FLUSH_BYTES {
            state = shared
                .to_writer
                .wait_timeout_while(state, LINGER, |s| s.lines.len() < FLUSH_BYTES && !s.closed)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if state.lines.is_empty() {
            if state.closed {
                return;
            }
            idle_batches += 1;
            continue;
        }
        idle_batches = 0;
        std::mem::swap(&mut state.lines, &mut spare);
        drop(state);
        shared.drained.notify_all();
        // A log line that cannot be written has nowhere better to go.
        let _ = output.write_all(&spare).and_then(|()| output.flush());
        spare.clear();
    }
}

fn wait<'a>(condvar: &Condvar, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
    condvar.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

impl<'a> MakeWriter<'a> for BatchedWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
        }
    }
}

/// Appends what the formatter writes (one event per `write`) to the shared buffer.
pub struct LineWriter<'a> {
    shared: &'a Shared,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut state = self.shared.lock();
        while state.lines.len() >= MAX_BUFFERED && !state.closed {
            state = wait(&self.shared.drained, state);
        }
        state.lines.extend_from_slice(bytes);
        let wake = std::mem::take(&mut state.writer_asleep) || state.lines.len() >= FLUSH_BYTES;
        drop(state);
        if wake {
            self.shared.to_writer.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.to_writer.notify_one();
        self.shared.drained.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` whose contents the test can read.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn wait_for(output: &Captured, text: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while output.text() != text && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(output.text(), text);
    }

    #[test]
    fn a_sleeping_writer_wakes_for_the_next_line() {
        let output = Captured::default();
        let (writer, guard) = batched(output.clone());
        writer.make_writer().write_all(b"before\n").unwrap();
        wait_for(&output, "before\n");
        // Long enough for the writer to stop waking on its timer.
        std::thread::sleep(LINGER * (IDLE_BEFORE_SLEEP + 10));
        assert!(guard.shared.lock().writer_asleep, "idle: the writer sleeps");
        writer.make_writer().write_all(b"after\n").unwrap();
        wait_for(&output, "before\nafter\n");
        drop(guard);
    }

    #[test]
    fn lines_arrive_in_order_after_a_linger_and_all_by_the_guard() {
        let output = Captured::default();
        let (writer, guard) = batched(output.clone());
        writer.make_writer().write_all(b"first\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while output.text().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            output.text(),
            "first\n",
            "a lone line is written after the linger"
        );

        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..2_000 {
                        let line = format!("t{t} line {i:05} {}\n", "x".repeat(40));
                        writer.make_writer().write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let text = output.text();
        assert_eq!(text.lines().count(), 1 + 4 * 2_000, "nothing is lost");
        for t in 0..4 {
            let ours: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with(&format!("t{t} ")))
                .collect();
            let mut sorted = ours.clone();
            sorted.sort_unstable();
            assert_eq!(ours, sorted, "one thread's lines keep their order");
        }
    }
}
