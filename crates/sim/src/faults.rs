//! Fault directives (`[[sim:…]]` inside the last user message) and their resolution against
//! [`SimConfig`]. Directives live in message text so they survive any gateway unchanged.

use std::time::Duration;

use crate::SimConfig;

const OPEN: &str = "[[sim:";
const CLOSE: &str = "]]";
/// Upper bound on forced chunks, so a typo cannot make the simulator allocate without limit.
const MAX_CHUNKS: usize = 100_000;

/// Knobs parsed from one message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Directives {
    pub status: Option<u16>,
    pub retry_after: Option<u64>,
    pub hang: bool,
    pub cut_after: Option<usize>,
    pub error_event: bool,
    pub delay_ms: Option<u64>,
    pub chunks: Option<usize>,
    pub latency_ms: Option<u64>,
    pub faults: crate::sse::StreamFaults,
    /// See [`crate::abuse`].
    pub echo_key: bool,
    pub huge_body: Option<usize>,
    pub endless: bool,
}

impl Directives {
    /// Applies one `key=value` (or bare flag) item; unknown items are ignored.
    fn apply(&mut self, item: &str) {
        let (key, value) = item.split_once('=').unwrap_or((item, ""));
        let value = value.trim();
        match key.trim() {
            "status" => self.status = value.parse().ok(),
            "retry_after" => self.retry_after = value.parse().ok(),
            "hang" => self.hang = true,
            "cut_after" => self.cut_after = value.parse().ok(),
            "error_event" => self.error_event = true,
            "delay_ms" => self.delay_ms = value.parse().ok(),
            "chunks" => self.chunks = value.parse().ok(),
            "latency_ms" => self.latency_ms = value.parse().ok(),
            "stall_after" => self.faults.stall_after = value.parse().ok(),
            "cut_mid_event" => self.faults.cut_mid_event = value.parse().ok(),
            "no_terminator" => self.faults.no_terminator = true,
            "echo_key" => self.echo_key = true,
            "huge_body" => self.huge_body = value.parse().ok(),
            "endless" => self.endless = true,
            _ => {}
        }
    }
}

/// Parses every directive in `text` and returns them with the text minus the directives.
pub(crate) fn extract(text: &str) -> (Directives, String) {
    let mut directives = Directives::default();
    let mut rest = text;
    let mut clean = String::with_capacity(text.len());
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find(CLOSE) else { break };
        clean.push_str(&rest[..start]);
        after[..end]
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|item| !item.is_empty())
            .for_each(|item| directives.apply(item));
        rest = &after[end + CLOSE.len()..];
    }
    clean.push_str(rest);
    (directives, clean)
}

/// Effective behaviour of one request: directives win over the global config.
#[derive(Clone, Debug)]
pub(crate) struct Knobs {
    pub latency: Duration,
    pub chunk_delay: Duration,
    pub chunks: Option<usize>,
    pub status: Option<u16>,
    pub retry_after: Option<u64>,
    pub hang: bool,
    pub cut_after: Option<usize>,
    pub error_event: bool,
    pub faults: crate::sse::StreamFaults,
}

impl Knobs {
    pub(crate) fn resolve(directives: &Directives, config: &SimConfig) -> Self {
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        Self {
            latency: ms(directives.latency_ms, config.latency),
            chunk_delay: ms(directives.delay_ms, config.chunk_delay),
            chunks: directives
                .chunks
                .or(config.chunks)
                .map(|n| n.clamp(1, MAX_CHUNKS)),
            status: directives.status,
            retry_after: directives.retry_after,
            hang: directives.hang,
            cut_after: directives.cut_after,
            error_event: directives.error_event,
            faults: directives.faults,
        }
    }

    /// Waits out the latency; a `hang` never returns (the client must time out). The future is
    /// dropped when the client disconnects, so a hang costs nothing once abandoned.
    pub(crate) async fn before_head(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        if self.hang {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_and_strips() {
        let (d, text) = extract("hi [[sim:status=429 retry_after=2]] there[[sim:hang]]");
        assert_eq!(d.status, Some(429));
        assert_eq!(d.retry_after, Some(2));
        assert!(d.hang);
        assert_eq!(text, "hi  there");
    }

    #[test]
    fn unterminated_directive_is_text() {
        let (d, text) = extract("a [[sim:status=500");
        assert_eq!(d, Directives::default());
        assert_eq!(text, "a [[sim:status=500");
    }
}
