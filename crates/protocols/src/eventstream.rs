//! Incremental decoding of `application/vnd.amazon.eventstream` bodies (Bedrock
//! ConverseStream and InvokeModelWithResponseStream), on top of `aws-smithy-eventstream`.
//!
//! Network chunks never align with frames, so [`EventStreamDecoder::push`] buffers only the
//! current, incomplete frame. Its size is bounded: the prelude (total length, headers length,
//! prelude CRC) is checked as soon as its 12 bytes are in, so a corrupt or hostile length is
//! rejected before anything is buffered for it, and frames above [`MAX_FRAME_BYTES`] are
//! refused. Every complete frame is decoded by the smithy decoder, which verifies both the
//! prelude CRC and the message CRC.

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::{HeaderValue, Message};
use bytes::{Buf, BytesMut};

/// Largest frame accepted: botocore's payload cap (24 MiB) plus its header cap (128 KiB).
pub const MAX_FRAME_BYTES: usize = 24 * 1024 * 1024 + 128 * 1024;
/// `total_len u32`, `headers_len u32`, `prelude_crc u32`.
const PRELUDE_BYTES: usize = 12;
/// Prelude plus the message CRC: the size of a frame without headers or payload.
const MIN_FRAME_BYTES: usize = 16;

/// Why an event stream could not be decoded. Terminal: the decoder refuses further input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventStreamError {
    /// The prelude's CRC does not match its first 8 bytes.
    #[error("event-stream prelude checksum mismatch")]
    PreludeChecksum,
    /// The frame's declared length is impossible or above [`MAX_FRAME_BYTES`].
    #[error("event-stream frame length {0} is invalid")]
    Length(u32),
    /// The frame failed to decode (message checksum, header encoding, …).
    #[error("event-stream frame is invalid: {0}")]
    Frame(String),
    /// The body ended inside a frame.
    #[error("the event stream ended inside a frame")]
    Truncated,
}

impl EventStreamError {
    /// Whether this is a checksum failure (prelude or message), as the AWS vectors name them.
    pub fn is_checksum(&self) -> bool {
        match self {
            Self::PreludeChecksum => true,
            Self::Frame(m) => m.contains("checksum"),
            _ => false,
        }
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame(Message);

impl Frame {
    /// The underlying smithy message (all header types, raw payload).
    pub fn message(&self) -> &Message {
        &self.0
    }

    /// The payload bytes.
    pub fn payload(&self) -> &[u8] {
        self.0.payload()
    }

    /// A string header's value (`:event-type`, `:message-type`, …); `None` when absent or
    /// not a string.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.0
            .headers()
            .iter()
            .find(|h| h.name().as_str() == name)
            .and_then(|h| match h.value() {
                HeaderValue::String(s) => Some(s.as_str()),
                _ => None,
            })
    }

    /// `:message-type` (`event`, `exception` or `error`); `event` when absent.
    pub fn message_type(&self) -> &str {
        self.header_str(":message-type").unwrap_or("event")
    }
}

/// Incremental frame decoder: feed body chunks, get whole CRC-checked frames.
#[derive(Debug, Default)]
pub struct EventStreamDecoder {
    buffer: BytesMut,
    decoder: MessageFrameDecoder,
    /// The prelude of the frame being buffered was checked.
    prelude_checked: bool,
    failed: bool,
}

impl EventStreamDecoder {
    /// A decoder at the start of a body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `bytes` and moves every frame they complete to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Frame>) -> Result<(), EventStreamError> {
        if self.failed {
            return Err(EventStreamError::Frame("the decoder already failed".into()));
        }
        self.buffer.extend_from_slice(bytes);
        let result = self.drain(out);
        self.failed = result.is_err();
        result
    }

    /// Call at the end of the body: an incomplete frame is an error.
    pub fn finish(&self) -> Result<(), EventStreamError> {
        if self.buffer.is_empty() || self.failed {
            Ok(())
        } else {
            Err(EventStreamError::Truncated)
        }
    }

    /// Bytes held for the incomplete frame.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    fn drain(&mut self, out: &mut Vec<Frame>) -> Result<(), EventStreamError> {
        while self.buffer.len() >= PRELUDE_BYTES {
            if !self.prelude_checked {
                check_prelude(&self.buffer[..PRELUDE_BYTES])?;
                self.prelude_checked = true;
            }
            let total = read_u32(&self.buffer[..4]) as usize;
            if self.buffer.len() < total {
                return Ok(());
            }
            let mut frame = self.buffer.split_to(total);
            self.prelude_checked = false;
            match self.decoder.decode_frame(&mut frame) {
                Ok(DecodedFrame::Complete(message)) => out.push(Frame(message)),
                Ok(DecodedFrame::Incomplete) => return Err(EventStreamError::Truncated),
                Err(e) => return Err(EventStreamError::Frame(e.to_string())),
            }
            if frame.has_remaining() {
                return Err(EventStreamError::Frame("frame length mismatch".into()));
            }
        }
        Ok(())
    }
}

fn read_u32(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_be_bytes(word)
}

/// Checks the prelude CRC and the declared lengths before the frame is buffered.
fn check_prelude(prelude: &[u8]) -> Result<(), EventStreamError> {
    if crc32fast::hash(&prelude[..8]) != read_u32(&prelude[8..12]) {
        return Err(EventStreamError::PreludeChecksum);
    }
    let total = read_u32(&prelude[..4]);
    let headers = read_u32(&prelude[4..8]) as usize;
    let size = total as usize;
    if !(MIN_FRAME_BYTES..=MAX_FRAME_BYTES).contains(&size) || headers > size - MIN_FRAME_BYTES {
        return Err(EventStreamError::Length(total));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The empty message from the provider reference (section 4.5).
    const EMPTY: [u8; 16] = [
        0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8,
        0xff,
    ];

    #[test]
    fn byte_at_a_time_yields_whole_frames() {
        let mut d = EventStreamDecoder::new();
        let mut out = Vec::new();
        let two: Vec<u8> = EMPTY.iter().chain(EMPTY.iter()).copied().collect();
        for b in &two {
            d.push(std::slice::from_ref(b), &mut out).unwrap();
        }
        assert_eq!(out.len(), 2);
        assert_eq!(d.buffered(), 0);
        d.finish().unwrap();
    }

    #[test]
    fn corrupt_prelude_is_rejected_before_buffering_and_truncation_is_reported() {
        let mut bad = EMPTY;
        bad[3] = 0xff;
        let mut d = EventStreamDecoder::new();
        let err = d.push(&bad[..12], &mut Vec::new()).unwrap_err();
        assert_eq!(err, EventStreamError::PreludeChecksum);
        let mut d = EventStreamDecoder::new();
        d.push(&EMPTY[..14], &mut Vec::new()).unwrap();
        assert_eq!(d.finish(), Err(EventStreamError::Truncated));
    }

    #[test]
    fn an_oversized_frame_is_refused_from_its_prelude_without_buffering() {
        let total = (MAX_FRAME_BYTES as u32 + 1).to_be_bytes();
        let mut prelude = [0u8; 12];
        prelude[..4].copy_from_slice(&total);
        let crc = crc32fast::hash(&prelude[..8]).to_be_bytes();
        prelude[8..].copy_from_slice(&crc);
        let mut d = EventStreamDecoder::new();
        let err = d.push(&prelude, &mut Vec::new()).unwrap_err();
        assert!(matches!(err, EventStreamError::Length(_)));
        assert!(
            d.push(&EMPTY, &mut Vec::new()).is_err(),
            "a failed decoder stays failed"
        );
    }
}
