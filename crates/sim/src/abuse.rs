//! Upstreams that abuse the gateway, for its caps and its error scrubbing: directives in
//! the request body (anywhere, like the fault knobs) that take over the answer before the
//! protocol handlers see the request. OpenAI's shapes, or Anthropic's for Messages paths.
//!
//! * `[[sim:echo_key]]`: a 400 whose error message quotes the credential the request
//!   carried (what a careless provider does with a key it refuses); for a stream, a 200
//!   whose one event is that error.
//! * `[[sim:huge_body=N]]`: a 200 JSON answer of `N` bytes, chunked (no `Content-Length`),
//!   generated as it is read.
//! * `[[sim:endless]]`: a 200 event stream that never ends (content chunks, `delay_ms`
//!   apart); [`SimHandle::open_endless_streams`] counts the ones whose client is still
//!   connected.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use serde_json::json;

use crate::{Sim, SimHandle, faults, reply};

/// Middleware: answers for an abuse directive, else hands the request on unchanged.
pub(crate) async fn abuse(State(sim): State<Sim>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, sim.config.max_body_bytes).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let (directives, _) = faults::extract(&String::from_utf8_lossy(&bytes));
    let anthropic = parts.uri.path().contains("messages");
    if directives.echo_key {
        let stream =
            serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| v["stream"] == true);
        return echo_key(&parts.headers, anthropic, stream);
    }
    if let Some(size) = directives.huge_body {
        return huge_body(size);
    }
    if directives.endless {
        let delay = Duration::from_millis(directives.delay_ms.unwrap_or(0));
        return endless(&sim.handle, anthropic, delay);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The credential a request carried, whichever header carried it.
fn credential(headers: &HeaderMap) -> String {
    ["authorization", "x-api-key", "api-key", "x-goog-api-key"]
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).to_owned())
        .unwrap_or_default()
}

/// The error, as a whole answer or (for a stream) as the stream's one event.
fn echo_key(headers: &HeaderMap, anthropic: bool, stream: bool) -> Response {
    let message = format!(
        "The key {} may not be used with this model (simulated echo).",
        credential(headers)
    );
    let body = if anthropic {
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}})
    } else {
        json!({"error": {"message": message, "type": "invalid_request_error",
            "param": null, "code": "model_not_allowed"}})
    };
    if !stream {
        return reply::json(StatusCode::BAD_REQUEST, HeaderMap::new(), &body);
    }
    let event = match anthropic {
        true => format!("event: error\ndata: {body}\n\n"),
        false => format!("data: {body}\n\n"),
    };
    reply::sse(HeaderMap::new(), Body::from(event))
}

/// Bytes generated per read of a huge body.
const PIECE: usize = 64 * 1024;

fn huge_body(size: usize) -> Response {
    let head =
        Bytes::from_static(br#"{"id":"chatcmpl-huge","object":"chat.completion","padding":""#);
    let tail = Bytes::from_static(br#""}"#);
    let padding = size.saturating_sub(head.len() + tail.len());
    let pieces = std::iter::once(head)
        .chain((0..padding.div_ceil(PIECE)).map(move |i| {
            let len = PIECE.min(padding - i * PIECE);
            Bytes::from(vec![b'x'; len])
        }))
        .chain(std::iter::once(tail))
        .map(Ok::<_, std::io::Error>);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(futures_util::stream::iter(pieces)),
    )
        .into_response()
}

/// Counts itself among the open endless streams while its body is alive.
struct OpenStream(Arc<AtomicUsize>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn endless(handle: &SimHandle, anthropic: bool, delay: Duration) -> Response {
    let counter = handle.endless_counter();
    counter.fetch_add(1, Ordering::SeqCst);
    let open = OpenStream(counter);
    let lead: Vec<Bytes> = if anthropic {
        vec![
            Bytes::from_static(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_endless\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"endless\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":1,\"output_tokens\":0}}}\n\n"),
            Bytes::from_static(b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"),
        ]
    } else {
        Vec::new()
    };
    let chunk = Bytes::from_static(if anthropic {
        b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"more \"}}\n\n"
    } else {
        b"data: {\"id\":\"chatcmpl-endless\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"endless\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"more \"},\"finish_reason\":null}]}\n\n"
    });
    let state = (open, lead.into_iter(), chunk, delay);
    let body = futures_util::stream::unfold(state, |(open, mut lead, chunk, delay)| async move {
        let next = match lead.next() {
            Some(first) => first,
            None => {
                if delay.is_zero() {
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(delay).await;
                }
                chunk.clone()
            }
        };
        Some((Ok::<_, std::io::Error>(next), (open, lead, chunk, delay)))
    });
    reply::sse(HeaderMap::new(), Body::from_stream(body))
}
