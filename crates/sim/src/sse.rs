//! Protocol-neutral stream driver: turns a lazy sequence of already-framed SSE events into a
//! response body, applying chunk delay, `cut_after`, `error_event` and the [`StreamFaults`].
//!
//! Frames are produced one at a time only when the body is polled, so a slow reader
//! back-pressures generation and nothing is pre-buffered.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;

/// Where a frame sits in the stream; faults count `Content` frames only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Before the first content (role chunk, message_start, preamble…).
    Lead,
    /// One content chunk (text piece or tool-argument fragment).
    Content,
    /// After the content (finish, usage, terminator).
    Tail,
}

/// One framed event.
pub(crate) struct Frame {
    pub kind: Kind,
    pub bytes: Bytes,
}

impl Frame {
    pub(crate) fn new(kind: Kind, bytes: impl Into<Bytes>) -> Self {
        Self {
            kind,
            bytes: bytes.into(),
        }
    }
}

/// Pause before a cut so the frames already sent reach the client.
const FLUSH_PAUSE: Duration = Duration::from_millis(5);

/// Content chunks sent before an injected mid-stream error.
const ERROR_AFTER: usize = 2;

/// Everything the driver needs for one stream.
pub(crate) struct Plan {
    pub frames: Box<dyn Iterator<Item = Frame> + Send>,
    pub delay: Duration,
    pub cut_after: Option<usize>,
    /// The protocol's mid-stream error frame, when `error_event` was requested.
    pub error_frame: Option<Bytes>,
    pub faults: StreamFaults,
}

/// The ways a real upstream stream goes wrong that a gateway must tell truthfully.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StreamFaults {
    /// After this many content frames, go silent without closing (`stall_after=N`).
    pub stall_after: Option<usize>,
    /// After this many content frames, send half of the next frame and abort the connection
    /// (`cut_mid_event=N`).
    pub cut_mid_event: Option<usize>,
    /// Leave out the last frame (the protocol's terminator) and end the body cleanly
    /// (`no_terminator`).
    pub no_terminator: bool,
}

struct Driver {
    frames: std::iter::Peekable<Box<dyn Iterator<Item = Frame> + Send>>,
    plan: Plan,
    content_sent: usize,
    started: bool,
    finished: bool,
    /// Half a frame was sent; the next poll cuts the connection.
    torn: bool,
}

enum Step {
    Send(Bytes),
    Cut,
    End,
    Stall,
    /// Half a frame, then a cut.
    Tear(Bytes),
}

impl Driver {
    /// Decides what to do with `frame`, given the faults and the content sent so far.
    fn step(&mut self, frame: &Frame) -> Step {
        let past = |limit: usize| self.content_sent >= limit || frame.kind == Kind::Tail;
        if self.plan.cut_after.is_some_and(past) {
            return Step::Cut;
        }
        if self.plan.error_frame.is_some() && past(ERROR_AFTER) {
            return self.plan.error_frame.take().map_or(Step::End, Step::Send);
        }
        let faults = self.plan.faults;
        if faults.stall_after.is_some_and(past) {
            return Step::Stall;
        }
        if faults.cut_mid_event.is_some_and(past) {
            let half = frame.bytes.len() / 2;
            return Step::Tear(frame.bytes.slice(..half.max(1)));
        }
        if frame.kind == Kind::Content {
            self.content_sent += 1;
        }
        Step::Send(frame.bytes.clone())
    }

    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Self)> {
        if self.torn {
            // The half frame went out; now the connection dies.
            self.torn = false;
            tokio::time::sleep(FLUSH_PAUSE).await;
            let cut = std::io::Error::other("sim: connection cut mid-event (cut_mid_event)");
            return Some((Err(cut), self));
        }
        if self.finished {
            return None;
        }
        if self.started && !self.plan.delay.is_zero() {
            tokio::time::sleep(self.plan.delay).await;
        }
        self.started = true;
        let frame = self.frames.next()?;
        if self.plan.faults.no_terminator && self.frames.peek().is_none() {
            return None;
        }
        let injecting = self.plan.error_frame.is_some();
        match self.step(&frame) {
            Step::Send(bytes) => {
                // The injected error frame is the last thing the stream says.
                self.finished = injecting && self.plan.error_frame.is_none();
                Some((Ok(bytes), self))
            }
            Step::Cut => {
                self.finished = true;
                // Returning Pending first lets hyper flush what was sent; an error straight away
                // would discard buffered frames (and even the head) instead of cutting after them.
                tokio::time::sleep(FLUSH_PAUSE).await;
                let cut = std::io::Error::other("sim: connection cut (cut_after)");
                Some((Err(cut), self))
            }
            Step::End => None,
            Step::Stall => std::future::pending().await,
            Step::Tear(half) => {
                self.finished = true;
                self.torn = true;
                Some((Ok(half), self))
            }
        }
    }
}

/// The response body for `plan`. An `Err` item makes hyper abort the connection without the
/// terminating chunk, which is how a real upstream dying mid-stream looks to the client.
pub(crate) fn body(mut plan: Plan) -> Body {
    let frames: Box<dyn Iterator<Item = Frame> + Send> =
        std::mem::replace(&mut plan.frames, Box::new(std::iter::empty()));
    let driver = Driver {
        frames: frames.peekable(),
        plan,
        content_sent: 0,
        started: false,
        finished: false,
        torn: false,
    };
    Body::from_stream(futures_util::stream::unfold(driver, Driver::next))
}
