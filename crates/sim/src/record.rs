//! Request recording: every request is stored before it is answered (even one that will hang),
//! so gateway tests can assert exactly what went upstream.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};

use crate::Sim;

/// One request as the simulator received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path and query, e.g. `/v1/messages?beta=true`.
    pub path: String,
    /// Headers in arrival order; names are lower case, values lossily decoded.
    pub headers: Vec<(String, String)>,
    /// Raw body bytes.
    pub body: Bytes,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// Path without the query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or_default()
    }

    /// Shape served by `GET /_sim/requests`.
    pub fn to_json(&self) -> Value {
        let headers: Vec<Value> = self.headers.iter().map(|(k, v)| json!([k, v])).collect();
        json!({
            "method": self.method,
            "path": self.path,
            "headers": headers,
            "body": String::from_utf8_lossy(&self.body),
            "json": self.json(),
        })
    }

    fn from_parts(parts: &http::request::Parts, body: Bytes) -> Self {
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
        let headers = parts
            .headers
            .iter()
            .map(|(k, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (k.as_str().to_owned(), value)
            })
            .collect();
        Self {
            method: parts.method.as_str().to_owned(),
            path,
            headers,
            body,
        }
    }
}

/// Cheap, cloneable access to the recorded requests of one simulator.
#[derive(Clone, Debug, Default)]
pub struct SimHandle {
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    endless: Arc<std::sync::atomic::AtomicUsize>,
}

impl SimHandle {
    /// Every request received so far (excluding `/_sim/…`), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().clone()
    }

    /// The most recent request, if any.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.lock().last().cloned()
    }

    /// Endless streams (`[[sim:endless]]`) still being sent: a client that hangs up (or a
    /// gateway that drops the upstream connection) ends its stream.
    pub fn open_endless_streams(&self) -> usize {
        self.endless.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn endless_counter(&self) -> Arc<std::sync::atomic::AtomicUsize> {
        self.endless.clone()
    }

    /// Forgets all recorded requests.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn push(&self, request: RecordedRequest) {
        self.lock().push(request);
    }

    /// A panic while holding the lock cannot leave the Vec inconsistent, so poison is ignored.
    fn lock(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Middleware: buffers the body, records the request, then hands it on unchanged.
pub(crate) async fn record(State(sim): State<Sim>, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/_sim/") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, sim.config.max_body_bytes).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    sim.handle
        .push(RecordedRequest::from_parts(&parts, bytes.clone()));
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// `GET /_sim/requests`.
pub(crate) async fn list(State(sim): State<Sim>) -> Json<Value> {
    let all: Vec<Value> = sim
        .handle
        .requests()
        .iter()
        .map(RecordedRequest::to_json)
        .collect();
    Json(Value::Array(all))
}

/// `DELETE /_sim/requests`.
pub(crate) async fn clear_all(State(sim): State<Sim>) -> StatusCode {
    sim.handle.clear();
    StatusCode::NO_CONTENT
}
