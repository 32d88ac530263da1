//! The phases of a graceful shutdown, shared by the accept loop, `/readyz`, the request
//! deadlines and every relayed stream.
//!
//! SIGTERM moves the process through the phases in order, each a fact everyone can wait for:
//! readiness fails at once (so a load balancer stops sending), the listener closes after a
//! short drain, in-flight requests get the grace period, then streams end with an error event
//! in their caller's protocol and the last connections are dropped.

use std::time::Duration;

use tokio::sync::watch;

/// Where the process is on its way out. Phases only move forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Serving,
    /// `/readyz` answers 503; requests are still served and the listener still accepts.
    Draining,
    /// The listener is closed; connections finish their requests (keep-alive is off).
    Closing,
    /// The grace period is over: streams end with an error event, unanswered requests get
    /// 503.
    Expired,
    /// Connections still open are dropped.
    Halted,
}

/// How long each phase of a shutdown lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownSettings {
    /// Between readiness failing and the listener closing, for a load balancer to notice.
    pub drain: Duration,
    /// The longest in-flight requests may take once the listener is closed.
    pub grace: Duration,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self {
            drain: Duration::from_secs(5),
            grace: Duration::from_secs(30),
        }
    }
}

/// After the grace period: how long the error events and their records get before the
/// remaining connections are dropped.
pub const FINAL_FLUSH: Duration = Duration::from_secs(5);

/// The process's shutdown phase; cheap to clone (a watch channel).
#[derive(Clone, Debug)]
pub struct Shutdown {
    phase: watch::Sender<Phase>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            phase: watch::Sender::new(Phase::Serving),
        }
    }
}

impl Shutdown {
    pub fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Whether readiness must fail: a shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.phase() >= Phase::Draining
    }

    /// Moves to `phase` (never back).
    pub fn advance(&self, phase: Phase) {
        self.phase.send_if_modified(|current| {
            let forward = *current < phase;
            if forward {
                *current = phase;
            }
            forward
        });
    }

    /// Resolves once `phase` is reached.
    pub fn reached(&self, phase: Phase) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.phase.subscribe();
        async move {
            // The sender lives as long as the server state; without it, nothing ever comes.
            if receiver.wait_for(|now| *now >= phase).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// A receiver for code that waits for a phase many times (a stream's every chunk).
    pub fn subscribe(&self) -> PhaseWatch {
        PhaseWatch(self.phase.subscribe())
    }
}

/// A handle that waits for a phase without allocating per wait.
#[derive(Debug)]
pub struct PhaseWatch(watch::Receiver<Phase>);

impl PhaseWatch {
    /// Resolves once `phase` is reached (cancel safe).
    pub async fn reached(&mut self, phase: Phase) {
        if self.0.wait_for(|now| *now >= phase).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn phases_only_move_forward_and_waiters_see_them() {
        let shutdown = Shutdown::default();
        let expired = tokio::spawn(shutdown.reached(Phase::Expired));
        shutdown.advance(Phase::Closing);
        shutdown.advance(Phase::Draining);
        assert_eq!(shutdown.phase(), Phase::Closing);
        assert!(!expired.is_finished());
        shutdown.advance(Phase::Halted);
        expired.await.unwrap();
        assert!(shutdown.is_draining());
    }
}
