//! Whole SSE events out of a byte stream, without parsing them: what a pass-through relay
//! forwards, so that the caller never receives half an event (and an error event written
//! after an upstream cut is always parseable), and the recognition of a protocol's
//! terminator event, which a durable relay holds back until the answer is recorded.
//!
//! [`EventFramer`] scans each byte once (line endings `\n`, `\r\n` or `\r`, as SSE allows)
//! and hands back everything up to the last complete event; a chunk that ends on an event
//! boundary — what providers send — is returned as is, without a copy.

use bytes::{Bytes, BytesMut};

/// Splits a byte stream into runs of whole SSE events.
#[derive(Debug, Default)]
pub struct EventFramer {
    /// Bytes after the last complete event.
    held: BytesMut,
    /// The current line has no bytes yet (a line terminator now ends the event).
    line_empty: bool,
    /// The last byte scanned was `\r`: a `\n` next belongs to the same line ending.
    after_cr: bool,
    /// An event ended with a `\r` that was the last byte seen; the boundary is known once
    /// the next byte shows whether a `\n` belongs to it.
    boundary_at_cr: bool,
}

impl EventFramer {
    pub fn new() -> Self {
        Self {
            line_empty: true,
            ..Self::default()
        }
    }

    /// Feeds a chunk; returns every complete event not returned before (possibly empty).
    pub fn push(&mut self, chunk: Bytes) -> Bytes {
        let end = self.scan(&chunk);
        if self.held.is_empty() {
            return match end {
                Some(end) if end == chunk.len() => chunk,
                Some(end) => {
                    self.held.extend_from_slice(&chunk[end..]);
                    chunk.slice(..end)
                }
                None => {
                    self.held.extend_from_slice(&chunk);
                    Bytes::new()
                }
            };
        }
        let offset = self.held.len();
        self.held.extend_from_slice(&chunk);
        match end {
            Some(end) => self.held.split_to(offset + end).freeze(),
            None => Bytes::new(),
        }
    }

    /// The stream ended: an event that ended on a lone `\r` is complete and returned;
    /// anything else held is an event the upstream never finished, and is dropped.
    pub fn finish(&mut self) -> Bytes {
        let held = std::mem::take(&mut self.held);
        if self.boundary_at_cr {
            self.boundary_at_cr = false;
            return held.freeze();
        }
        Bytes::new()
    }

    /// Bytes held back: an event the upstream has not finished (yet).
    pub fn pending(&self) -> usize {
        self.held.len()
    }

    /// Scans `bytes` (new input), returning the end of the last complete event in it, as
    /// an offset into `bytes` (`Some(0)`: an event ended just before it).
    fn scan(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut end = None;
        for (i, &b) in bytes.iter().enumerate() {
            if self.boundary_at_cr {
                self.boundary_at_cr = false;
                if b == b'\n' {
                    self.after_cr = false;
                    end = Some(i + 1);
                    continue;
                }
                end = Some(i);
            }
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    if self.line_empty {
                        if self.after_cr {
                            self.boundary_at_cr = true;
                        } else {
                            end = Some(i + 1);
                        }
                    }
                    self.line_empty = true;
                }
                _ => {
                    self.after_cr = false;
                    self.line_empty = false;
                }
            }
        }
        end
    }
}

/// The caller protocols whose terminator event a relay recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Terminator {
    /// `data: [DONE]`.
    OpenAi,
    /// `event: message_stop`.
    Anthropic,
}

impl Terminator {
    /// Where the terminator event starts, when the last event of `events` (whole events,
    /// as [`EventFramer`] or an encoder produce them) is this protocol's terminator.
    pub fn find(self, events: &[u8]) -> Option<usize> {
        let start = last_event_start(events)?;
        let event = &events[start..];
        let is_terminator = event
            .split(|&b| b == b'\n' || b == b'\r')
            .map(|line| line.strip_suffix(b" ").unwrap_or(line))
            .any(|line| match self {
                Terminator::OpenAi => field(line, b"data") == Some(b"[DONE]"),
                Terminator::Anthropic => field(line, b"event") == Some(b"message_stop"),
            });
        is_terminator.then_some(start)
    }
}

/// The value of an SSE field line `name: value` (one optional space after the colon).
fn field<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let rest = line.strip_prefix(name)?.strip_prefix(b":")?;
    Some(rest.strip_prefix(b" ").unwrap_or(rest))
}

/// The start of the last event in `events`: just after the blank line before it.
fn last_event_start(events: &[u8]) -> Option<usize> {
    let body_end = events.len() - events.iter().rev().take_while(|b| is_eol(**b)).count();
    if body_end == 0 {
        return None;
    }
    let mut scanner = EventFramer::new();
    let mut start = 0;
    for (i, b) in events[..body_end].iter().enumerate() {
        if let Some(end) = scanner.scan(std::slice::from_ref(b)) {
            start = i + end;
        }
    }
    Some(start)
}

fn is_eol(b: u8) -> bool {
    b == b'\n' || b == b'\r'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(chunks: &[&str]) -> Vec<String> {
        let mut framer = EventFramer::new();
        chunks
            .iter()
            .map(|c| String::from_utf8(framer.push(Bytes::from(c.to_string())).to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn whole_chunks_pass_unchanged() {
        let out = framed(&["data: a\n\n", "data: b\n\ndata: c\n\n"]);
        assert_eq!(out, ["data: a\n\n", "data: b\n\ndata: c\n\n"]);
    }

    #[test]
    fn half_events_are_held_until_complete() {
        let out = framed(&["data: a\n\nda", "ta: b\n", "\n"]);
        assert_eq!(out, ["data: a\n\n", "", "data: b\n\n"]);
    }

    #[test]
    fn crlf_and_cr_line_endings() {
        let out = framed(&["data: a\r\n\r", "\ndata: b\r\r", "x"]);
        assert_eq!(out, ["", "data: a\r\n\r\n", "data: b\r\r"]);
        let mut framer = EventFramer::new();
        assert!(framer.push(Bytes::from_static(b"data: c\r\r")).is_empty());
        assert_eq!(&framer.finish()[..], b"data: c\r\r");
        assert!(framer.push(Bytes::from_static(b"data: torn")).is_empty());
        assert!(framer.finish().is_empty());
    }

    #[test]
    fn every_split_of_a_stream_forwards_the_same_bytes() {
        let stream = "event: a\ndata: {\"x\":1}\n\r\n: c\r\rdata: [DONE]\n\n";
        for cut in 0..=stream.len() {
            let mut framer = EventFramer::new();
            let mut out = framer
                .push(Bytes::copy_from_slice(&stream.as_bytes()[..cut]))
                .to_vec();
            out.extend_from_slice(&framer.push(Bytes::copy_from_slice(&stream.as_bytes()[cut..])));
            out.extend_from_slice(&framer.finish());
            assert_eq!(String::from_utf8(out).unwrap(), stream, "cut at {cut}");
        }
    }

    #[test]
    fn terminators_are_recognised_only_as_the_last_event() {
        let openai = b"data: {\"choices\":[]}\n\ndata: [DONE]\n\n";
        assert_eq!(Terminator::OpenAi.find(openai), Some(22));
        assert_eq!(
            Terminator::OpenAi.find(b"data: {\"x\":\"[DONE]\"}\n\n"),
            None
        );
        assert_eq!(Terminator::OpenAi.find(b"data:[DONE]\r\n\r\n"), Some(0));
        let anthropic = b"event: message_delta\ndata: {}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        assert_eq!(Terminator::Anthropic.find(anthropic), Some(31));
        assert_eq!(
            Terminator::Anthropic.find(b"event: message_delta\ndata: {}\n\n"),
            None
        );
        assert_eq!(Terminator::Anthropic.find(b""), None);
    }
}
