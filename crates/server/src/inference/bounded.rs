//! Reading what an upstream sends under caps: a whole answer's size, a stream's total size
//! and duration. A provider that answers without end, or a broken one, costs a bounded
//! amount of memory and time; over a cap the upstream response is dropped, which closes
//! its connection (an unfinished body is never returned to the pool).

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::settings::UpstreamCaps;

/// Why a whole answer could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum WholeBodyError {
    /// Larger than the cap (by its `Content-Length`, or once that many bytes arrived).
    TooLarge { limit: usize },
    /// The connection broke or the total deadline passed.
    Broken,
}

/// Reads a whole upstream answer of at most `limit` bytes. A `Content-Length` above the
/// limit is refused before anything is read.
pub async fn read_whole(
    response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, WholeBodyError> {
    let declared = response.content_length().unwrap_or(0);
    if declared > limit as u64 {
        return Err(WholeBodyError::TooLarge { limit });
    }
    let mut body = BytesMut::with_capacity(declared as usize);
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| WholeBodyError::Broken)?;
        if body.len() + chunk.len() > limit {
            return Err(WholeBodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The first `limit` bytes of an answer (an error body, read only to classify it); the
/// rest is never read.
pub async fn read_prefix(response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    body
}

/// A stream's running totals against its caps.
#[derive(Debug)]
pub struct StreamBounds {
    received: u64,
    max_bytes: u64,
    deadline: Instant,
    max_duration: Duration,
}

/// A cap a stream went past.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamOverrun {
    Bytes(u64),
    Duration(Duration),
}

impl StreamOverrun {
    /// What the caller is told.
    pub fn message(self) -> String {
        match self {
            Self::Bytes(limit) => format!(
                "the provider's stream exceeded the limit of {limit} bytes; the answer is incomplete"
            ),
            Self::Duration(limit) => format!(
                "the provider's stream ran longer than the limit of {} s; the answer is incomplete",
                limit.as_secs()
            ),
        }
    }
}

impl StreamBounds {
    /// Bounds for a stream whose response head arrived now.
    pub fn start(caps: &UpstreamCaps) -> Self {
        Self {
            received: 0,
            max_bytes: caps.stream_max_bytes,
            deadline: Instant::now() + caps.stream_max_duration,
            max_duration: caps.stream_max_duration,
        }
    }

    /// Counts a chunk; `Err` once the stream is over its byte cap.
    pub fn count(&mut self, bytes: usize) -> Result<(), StreamOverrun> {
        self.received = self.received.saturating_add(bytes as u64);
        if self.received > self.max_bytes {
            return Err(StreamOverrun::Bytes(self.max_bytes));
        }
        Ok(())
    }

    /// How long the next read may wait: the idle timeout, or less when the deadline is
    /// nearer.
    pub fn wait(&self, idle: Duration) -> Duration {
        idle.min(self.deadline.saturating_duration_since(Instant::now()))
    }

    /// `Err` once the stream's deadline has passed.
    pub fn check_deadline(&self) -> Result<(), StreamOverrun> {
        if Instant::now() >= self.deadline {
            return Err(StreamOverrun::Duration(self.max_duration));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_past_the_cap_overrun() {
        let caps = UpstreamCaps {
            stream_max_bytes: 10,
            ..UpstreamCaps::default()
        };
        let mut bounds = StreamBounds::start(&caps);
        assert_eq!(bounds.count(6), Ok(()));
        assert_eq!(bounds.count(4), Ok(()));
        assert_eq!(bounds.count(1), Err(StreamOverrun::Bytes(10)));
        assert!(bounds.check_deadline().is_ok());
    }

    #[test]
    fn the_wait_never_passes_the_deadline() {
        let caps = UpstreamCaps {
            stream_max_duration: Duration::ZERO,
            ..UpstreamCaps::default()
        };
        let bounds = StreamBounds::start(&caps);
        assert_eq!(bounds.wait(Duration::from_secs(60)), Duration::ZERO);
        assert_eq!(
            bounds.check_deadline(),
            Err(StreamOverrun::Duration(Duration::ZERO))
        );
    }
}
