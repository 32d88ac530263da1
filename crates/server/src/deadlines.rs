//! Deadlines of a request before its response head, answered in the caller's own error
//! format (installed once per group of routes sharing one, like [`crate::panics`]):
//!
//! - the body timeout: a body not fully received within it of the head is answered
//!   `408 request_timeout` and, on HTTP/1, the connection closed;
//! - the end of the shutdown grace period: a request still without its response head gets
//!   `503` with `Retry-After`. (Streams already under way end with an error event of their
//!   own protocol; see the inference relay.)
//!
//! A handler answered while its body was still arriving (401 before reading, 413 at the
//! limit) closes the HTTP/1 connection too, rather than letting hyper drain the rest.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use switchboard_core::{ErrorName, PortError};

use crate::error::ApiError;
use crate::inference::SurfaceError;
use crate::panics::ErrorFormat;
use crate::shutdown::Phase;
use crate::state::AppState;

/// What the layer needs: the server state and the routes' error format.
#[derive(Clone)]
pub struct Guarded {
    state: AppState,
    format: ErrorFormat,
}

impl Guarded {
    pub fn new(state: &AppState, format: ErrorFormat) -> Self {
        Self {
            state: state.clone(),
            format,
        }
    }
}

/// The middleware (`axum::middleware::from_fn_with_state(Guarded::new(..), guard)`).
pub async fn guard(State(guarded): State<Guarded>, request: Request, next: Next) -> Response {
    let http1 = request.version() < Version::HTTP_2;
    let (request, arrival) = watch_body(request);
    let received = || arrival.as_ref().is_none_or(|a| a.load(Ordering::Acquire));
    let response = next.run(request);
    let body_due = tokio::time::sleep(guarded.state.settings.connections.body_timeout);
    let expired = guarded.state.shutdown.reached(Phase::Expired);
    tokio::pin!(response, body_due, expired);
    let mut body_checked = received();
    loop {
        tokio::select! {
            response = &mut response => {
                return if http1 && !received() { close_after(response) } else { response };
            }
            () = &mut body_due, if !body_checked => {
                if received() {
                    body_checked = true;
                    continue;
                }
                let seconds = guarded.state.settings.connections.body_timeout.as_secs();
                let message = format!("The request body did not arrive within {seconds} s");
                let response = answer(guarded.format, ErrorName::RequestTimeout, &message);
                return if http1 { close_after(response) } else { response };
            }
            () = &mut expired => {
                let message = "The server is shutting down; retry on another instance";
                return answer(guarded.format, ErrorName::Unavailable, message);
            }
        }
    }
}

/// Wraps a body that is still to come so that its complete arrival is noted (the flag);
/// an empty body needs nothing.
fn watch_body(request: Request) -> (Request, Option<Arc<AtomicBool>>) {
    let (parts, body) = request.into_parts();
    if body.is_end_stream() {
        return (Request::from_parts(parts, body), None);
    }
    let received = Arc::new(AtomicBool::new(false));
    let watched = WatchedBody {
        inner: body,
        received: received.clone(),
    };
    (
        Request::from_parts(parts, Body::new(watched)),
        Some(received),
    )
}

/// HTTP/1: hyper closes the connection after this response.
fn close_after(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// An error in the routes' own format (503s carry `Retry-After: 1`).
fn answer(format: ErrorFormat, name: ErrorName, message: &str) -> Response {
    match format {
        ErrorFormat::Port => ApiError(PortError::new(name, message)).into_response(),
        ErrorFormat::Surface(surface) => {
            let mut error = SurfaceError::new(name.status(), name.as_str(), message);
            if name == ErrorName::Unavailable {
                error.retry_after = Some(1);
            }
            error.into_response(surface)
        }
    }
}

/// A request body that notes when it has been received in full.
struct WatchedBody {
    inner: Body,
    received: Arc<AtomicBool>,
}

impl HttpBody for WatchedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let ended = matches!(polled, Poll::Ready(None))
            || (matches!(polled, Poll::Ready(Some(Ok(_)))) && self.inner.is_end_stream());
        if ended {
            self.received.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
