//! A handler that panics answers 500 in its caller's own error format, instead of the
//! connection being dropped mid-request: tower-http's catch-panic layer, installed once per
//! group of routes that share an error format (see [`crate::router`]).
//!
//! The panic's payload is never logged or answered: a formatted panic message may hold
//! request data (an `expect` on a parse error quotes the input). Where it happened is logged
//! by the process's panic hook; this counts it in `/metrics` and logs that it was answered.

use std::any::Any;

use axum::body::Body;
use axum::http::Response;
use axum::response::IntoResponse;
use switchboard_core::PortError;
use tower_http::catch_panic::{CatchPanicLayer, ResponseForPanic};

use crate::error::ApiError;
use crate::inference::{Surface, SurfaceError};
use crate::state::AppState;

/// The error format of the routes a layer guards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorFormat {
    /// The Port envelope of the management API (and Port invoke before its stream).
    Port,
    /// The inference surface's own format.
    Surface(Surface),
}

/// The catch-panic layer for routes answering in `format`.
pub fn layer(state: &AppState, format: ErrorFormat) -> CatchPanicLayer<AnswerPanic> {
    CatchPanicLayer::custom(AnswerPanic {
        state: state.clone(),
        format,
    })
}

/// Turns a caught panic into a 500 and counts it.
#[derive(Clone)]
pub struct AnswerPanic {
    state: AppState,
    format: ErrorFormat,
}

impl ResponseForPanic for AnswerPanic {
    type ResponseBody = Body;

    fn response_for_panic(&mut self, _payload: Box<dyn Any + Send + 'static>) -> Response<Body> {
        self.state.metrics.record_panic();
        tracing::error!(format = ?self.format, "a request handler panicked; answered 500");
        internal_error(self.format)
    }
}

/// A 500 with nothing of the request or the panic in it.
fn internal_error(format: ErrorFormat) -> Response<Body> {
    match format {
        ErrorFormat::Port => ApiError(PortError::internal()).into_response(),
        ErrorFormat::Surface(surface) => SurfaceError::internal().into_response(surface),
    }
}

/// A request that panics on purpose, so the tests can prove the layer above: compiled into
/// debug builds only (release builds, the ones shipped, have no such request), and even
/// there live only when `SWITCHBOARD_TEST_PANICS=1`, which only the test harness sets.
#[cfg(debug_assertions)]
pub mod test_trigger {
    use axum::extract::Request;
    use axum::middleware::Next;
    use axum::response::Response;

    /// The header that makes a request panic; its value is put in the panic message, so a
    /// test can check that the message (possible request data) reaches no log line.
    pub const HEADER: &str = "x-switchboard-test-panic";

    /// Whether this process serves the trigger.
    pub fn enabled() -> bool {
        std::env::var("SWITCHBOARD_TEST_PANICS").as_deref() == Ok("1")
    }

    /// Panics when the request carries [`HEADER`]; otherwise passes it on.
    pub async fn panic_if_asked(request: Request, next: Next) -> Response {
        if let Some(value) = request.headers().get(HEADER) {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            panic!("a test asked this request to panic: {value}");
        }
        next.run(request).await
    }
}
