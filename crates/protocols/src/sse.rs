//! An incremental Server-Sent Events parser and the framing writers used by the encoders.
//!
//! Upstream bodies arrive in chunks split anywhere: inside a line, inside a `\r\n`, inside
//! a multibyte UTF-8 character. The parser keeps only the unfinished tail between pushes,
//! reuses its event buffers (no allocation per event once warm), and caps how much one event
//! may accumulate so a hostile or broken upstream cannot grow memory without bound.

use bytes::{BufMut, BytesMut};

/// Default cap on one event's size (its pending line plus accumulated data).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// An SSE framing failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// One event grew past the parser's cap.
    #[error("an event exceeds the {limit}-byte limit")]
    EventTooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// A line is not UTF-8.
    #[error("a line is not valid UTF-8")]
    InvalidUtf8,
}

/// One dispatched event, borrowing the parser's buffers until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field; empty when absent (the SSE default type `message`).
    pub event: &'a str,
    /// The `data:` lines joined with `\n`.
    pub data: &'a str,
}

/// Incremental SSE parser: [`push`](Self::push) bytes, then drain
/// [`next_event`](Self::next_event) until it returns `None`.
///
/// Follows the WHATWG rules the providers rely on: lines end in `\n`, `\r\n` or `\r`; a
/// blank line dispatches; `:` lines are comments; one space after the field colon is
/// dropped; `data:` lines join with `\n`; an event with no `data:` line is not dispatched.
/// `id:` and `retry:` are ignored (no provider uses them).
#[derive(Debug)]
pub struct SseParser {
    buf: Vec<u8>,
    /// Start of the unprocessed bytes in `buf`.
    pos: usize,
    /// Bytes of `buf` before this offset hold no line ending after `pos`: a long line that
    /// arrives in many small chunks is scanned once, not once per chunk.
    scanned: usize,
    event: String,
    data: String,
    has_data: bool,
    /// The previous line ended with a `\r` that was the last byte seen, so a `\n` opening
    /// the next push belongs to that line ending.
    skip_lf: bool,
    /// The last call dispatched an event whose buffers must be cleared first.
    dispatched: bool,
    max_event: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser with the default 16 MiB event cap.
    pub fn new() -> Self {
        Self::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A parser with a custom event cap.
    pub fn with_max_event_bytes(max_event: usize) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            scanned: 0,
            event: String::new(),
            data: String::new(),
            has_data: false,
            skip_lf: false,
            dispatched: false,
            max_event,
        }
    }

    /// Appends bytes received from the upstream.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.scanned = self.scanned.saturating_sub(self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event, or `None` when more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<SseEvent<'_>>, SseError> {
        self.clear_dispatched();
        loop {
            if self.skip_lf && self.pos < self.buf.len() {
                self.skip_lf = false;
                if self.buf[self.pos] == b'\n' {
                    self.pos += 1;
                }
            }
            let rest = &self.buf[self.pos..];
            let skip = self.scanned.saturating_sub(self.pos);
            let Some(end) = memchr::memchr2(b'\n', b'\r', &rest[skip..]).map(|i| i + skip) else {
                self.scanned = self.buf.len();
                return self.check_pending(rest.len()).map(|()| None);
            };
            let line_start = self.pos;
            self.pos += end + 1;
            if rest[end] == b'\r' {
                match self.buf.get(self.pos) {
                    Some(b'\n') => self.pos += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            if self.process_line(line_start, line_start + end)? {
                return Ok(Some(self.current()));
            }
        }
    }

    /// Ends the stream: an unterminated last line and a pending event without its blank line
    /// are processed as if the blank line had come. Real servers always end events with a
    /// blank line; recorded transcripts sometimes do not.
    pub fn finish(&mut self) -> Result<Option<SseEvent<'_>>, SseError> {
        self.clear_dispatched();
        if self.pos < self.buf.len() {
            let (start, end) = (self.pos, self.buf.len());
            self.pos = end;
            if self.process_line(start, end)? {
                return Ok(Some(self.current()));
            }
        }
        if self.has_data {
            self.dispatch();
            return Ok(Some(self.current()));
        }
        Ok(None)
    }

    fn clear_dispatched(&mut self) {
        if self.dispatched {
            self.dispatched = false;
            self.event.clear();
            self.data.clear();
            self.has_data = false;
        }
    }

    fn check_pending(&self, pending: usize) -> Result<(), SseError> {
        if pending.saturating_add(self.data.len()) > self.max_event {
            return Err(SseError::EventTooLarge {
                limit: self.max_event,
            });
        }
        Ok(())
    }

    /// Handles one line; `true` when it dispatched an event.
    fn process_line(&mut self, start: usize, end: usize) -> Result<bool, SseError> {
        let line = std::str::from_utf8(&self.buf[start..end]).map_err(|_| SseError::InvalidUtf8)?;
        if line.is_empty() {
            if self.has_data {
                self.dispatch();
                return Ok(true);
            }
            self.event.clear();
            return Ok(false);
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "" => {} // comment
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                self.check_pending(0)?;
            }
            "event" => {
                self.event.clear();
                self.event.push_str(value);
            }
            _ => {}
        }
        Ok(false)
    }

    fn dispatch(&mut self) {
        self.dispatched = true;
    }

    fn current(&self) -> SseEvent<'_> {
        SseEvent {
            event: &self.event,
            data: &self.data,
        }
    }
}

/// Writes `data: <json>\n\n`.
pub(crate) fn write_data<T: serde::Serialize + ?Sized>(out: &mut BytesMut, value: &T) {
    out.put_slice(b"data: ");
    write_json(out, value);
    out.put_slice(b"\n\n");
}

/// Writes `event: <name>\ndata: <json>\n\n`.
pub(crate) fn write_event<T: serde::Serialize + ?Sized>(out: &mut BytesMut, name: &str, value: &T) {
    out.put_slice(b"event: ");
    out.put_slice(name.as_bytes());
    out.put_slice(b"\ndata: ");
    write_json(out, value);
    out.put_slice(b"\n\n");
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut BytesMut, value: &T) {
    // Serializing this crate's wire structs (string keys, no maps with non-string keys,
    // finite numbers) cannot fail, and the writer is infallible.
    serde_json::to_writer(out.writer(), value).expect("wire structs always serialize");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(parser: &mut SseParser, out: &mut Vec<(String, String)>) {
        while let Some(e) = parser.next_event().unwrap() {
            out.push((e.event.to_owned(), e.data.to_owned()));
        }
    }

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<(String, String)> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c);
            collect(&mut p, &mut out);
        }
        if let Some(e) = p.finish().unwrap() {
            out.push((e.event.to_owned(), e.data.to_owned()));
        }
        out
    }

    const SAMPLE: &[u8] = b": comment\r\nevent: a\r\ndata: one\r\ndata:two\r\n\r\ndata: {\"x\":1}\n\n\rid: 7\rdata: three\r\r: trailing\n";

    fn expected() -> Vec<(String, String)> {
        vec![
            ("a".into(), "one\ntwo".into()),
            (String::new(), "{\"x\":1}".into()),
            (String::new(), "three".into()),
        ]
    }

    #[test]
    fn handles_all_line_endings_comments_and_multiline_data() {
        assert_eq!(parse_chunks(&[SAMPLE]), expected());
    }

    #[test]
    fn every_single_split_gives_the_same_events() {
        for i in 0..=SAMPLE.len() {
            let (a, b) = SAMPLE.split_at(i);
            assert_eq!(parse_chunks(&[a, b]), expected(), "split at {i}");
        }
    }

    #[test]
    fn byte_at_a_time_gives_the_same_events() {
        let chunks: Vec<&[u8]> = SAMPLE.chunks(1).collect();
        assert_eq!(parse_chunks(&chunks), expected());
    }

    #[test]
    fn pseudo_random_multi_splits_give_the_same_events() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200 {
            let mut chunks = Vec::new();
            let mut rest = SAMPLE;
            while !rest.is_empty() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let n = (seed % 7) as usize + 1;
                let (a, b) = rest.split_at(n.min(rest.len()));
                chunks.push(a);
                rest = b;
            }
            assert_eq!(parse_chunks(&chunks), expected());
        }
    }

    #[test]
    fn events_without_data_are_not_dispatched() {
        assert!(parse_chunks(&[b"event: ping\n\n\n\n"]).is_empty());
        assert_eq!(
            parse_chunks(&[b"data\n\n"]),
            vec![(String::new(), String::new())]
        );
    }

    #[test]
    fn oversized_lines_and_events_are_rejected() {
        let mut p = SseParser::with_max_event_bytes(8);
        p.push(b"data: 0123456789");
        assert_eq!(
            p.next_event().unwrap_err(),
            SseError::EventTooLarge { limit: 8 }
        );
        let mut p = SseParser::with_max_event_bytes(8);
        p.push(b"data: 12345\ndata: 12345\n");
        assert!(p.next_event().is_err());
    }

    #[test]
    fn invalid_utf8_is_an_error_but_split_characters_are_fine() {
        let mut p = SseParser::new();
        p.push(b"data: \xff\n\n");
        assert_eq!(p.next_event().unwrap_err(), SseError::InvalidUtf8);
        let text = "data: °C\n\n".as_bytes();
        for i in 0..=text.len() {
            let (a, b) = text.split_at(i);
            assert_eq!(parse_chunks(&[a, b]), vec![(String::new(), "°C".into())]);
        }
    }

    /// A long line that arrives in many small reads is scanned once: feeding 8 MiB in
    /// 1 KiB reads costs a small multiple of one read (CPU time of this thread, a ratio; a
    /// parser that rescans the pending line on every read does 4,096 times the work).
    #[test]
    fn a_long_line_in_small_reads_is_scanned_once() {
        let line = vec![b'x'; 8 * 1024 * 1024];
        let cost = |read: usize| {
            let mut parser = SseParser::new();
            let start = thread_cpu_time();
            parser.push(b"data: ");
            for chunk in line.chunks(read) {
                parser.push(chunk);
                assert!(parser.next_event().unwrap().is_none());
            }
            parser.push(b"\n\n");
            let event = parser.next_event().unwrap().expect("one event");
            assert_eq!(event.data.len(), line.len());
            thread_cpu_time() - start
        };
        let whole = cost(line.len());
        let small = cost(1024);
        let ratio = small.as_secs_f64() / whole.as_secs_f64().max(1e-3);
        assert!(ratio < 20.0, "1 KiB reads {small:?}, one read {whole:?}");
    }

    fn thread_cpu_time() -> std::time::Duration {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid, writable timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
        std::time::Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
    }

    #[test]
    fn buffers_are_reused_between_events() {
        let mut p = SseParser::new();
        p.push(b"data: aaaaaaaaaaaaaaaa\n\n");
        assert!(p.next_event().unwrap().is_some());
        assert!(p.next_event().unwrap().is_none());
        let cap = p.data.capacity();
        p.push(b"data: bb\n\n");
        assert_eq!(p.next_event().unwrap().unwrap().data, "bb");
        assert_eq!(p.data.capacity(), cap);
    }
}
