//! Credentials the simulated STS and Google token endpoint issued, so the Bedrock and
//! Vertex endpoints can verify requests made with them.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

/// Temporary AWS credentials issued by AssumeRole.
#[derive(Clone, Debug)]
pub(crate) struct AwsSession {
    pub secret: String,
    pub token: String,
    pub expires_at: SystemTime,
}

/// Everything issued so far.
#[derive(Default, Debug)]
pub(crate) struct CloudState {
    aws: Mutex<HashMap<String, AwsSession>>,
    google: Mutex<HashMap<String, SystemTime>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl CloudState {
    pub(crate) fn add_aws_session(&self, access_key_id: String, session: AwsSession) {
        lock(&self.aws).insert(access_key_id, session);
    }

    pub(crate) fn aws_session(&self, access_key_id: &str) -> Option<AwsSession> {
        lock(&self.aws).get(access_key_id).cloned()
    }

    pub(crate) fn add_google_token(&self, token: String, expires_at: SystemTime) {
        lock(&self.google).insert(token, expires_at);
    }

    /// `Some(true)` for a live token, `Some(false)` for an expired one, `None` if unknown.
    pub(crate) fn google_token_live(&self, token: &str) -> Option<bool> {
        lock(&self.google)
            .get(token)
            .map(|expires| *expires > SystemTime::now())
    }
}
