//! The accept loop: HTTP/1 and HTTP/2 (prior knowledge) on one port through hyper-util's
//! auto builder, with every connection bounded (see [`ConnectionLimits`]), a cap on open
//! connections (beyond it a new one is closed at once, never queued), and the graceful
//! shutdown sequence of [`crate::shutdown`].
//!
//! The router is built once and every connection gets an `Arc` clone of it.

pub mod limits;
mod watchdog;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use limits::ConnectionLimits;
use watchdog::{Activity, WatchedIo};

use crate::shutdown::{FINAL_FLUSH, Phase};
use crate::state::AppState;

/// How long an idle HTTP/2 connection sent GOAWAY may take to close before it is cut.
const GOAWAY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Open connections at most on the operations listener (probes and scrapers).
const OPS_MAX_CONNECTIONS: usize = 64;

/// Where the server listens: the main port, and optionally a port serving only the
/// operations endpoints, with connections of its own (so probes get in when the main
/// port is at its cap).
pub struct Listeners {
    pub main: TcpListener,
    pub ops: Option<TcpListener>,
}

/// Serves until `signal` resolves, then shuts down gracefully (see [`crate::shutdown`]);
/// returns once every connection is closed.
pub async fn serve(
    listeners: Listeners,
    state: AppState,
    signal: impl Future<Output = ()> + Send + 'static,
) {
    let limits = state.settings.connections;
    let builder = Arc::new(builder(&limits));
    let main = Gate::new(limits.max_connections);
    let mut loops = vec![tokio::spawn(accept_loop(
        listeners.main,
        crate::router(state.clone()),
        main.clone(),
        builder.clone(),
        state.clone(),
    ))];
    let mut gates = vec![main];
    if let Some(ops) = listeners.ops {
        let gate = Gate::new(OPS_MAX_CONNECTIONS);
        loops.push(tokio::spawn(accept_loop(
            ops,
            crate::ops_router(state.clone()),
            gate.clone(),
            builder,
            state.clone(),
        )));
        gates.push(gate);
    }
    signal.await;
    shut_down(&state, &gates).await;
    for accept in loops {
        let _ = accept.await;
    }
}

/// readiness fails → drain → the listeners close → grace → streams end → flush → halt.
async fn shut_down(state: &AppState, gates: &[Gate]) {
    let settings = state.settings.shutdown;
    let shutdown = &state.shutdown;
    shutdown.advance(Phase::Draining);
    tracing::info!(
        drain_s = settings.drain.as_secs_f64(),
        "shutting down: readiness fails; still serving while load balancers notice"
    );
    tokio::time::sleep(settings.drain).await;
    shutdown.advance(Phase::Closing);
    tracing::info!(
        grace_s = settings.grace.as_secs_f64(),
        "listener closed; waiting for in-flight requests"
    );
    if tokio::time::timeout(settings.grace, all_closed(gates))
        .await
        .is_ok()
    {
        return;
    }
    shutdown.advance(Phase::Expired);
    tracing::warn!("shutdown grace period over; ending the remaining streams with an error");
    if tokio::time::timeout(FINAL_FLUSH, all_closed(gates))
        .await
        .is_err()
    {
        tracing::warn!("dropping connections still open after the final flush");
    }
    shutdown.advance(Phase::Halted);
    all_closed(gates).await;
}

async fn all_closed(gates: &[Gate]) {
    for gate in gates {
        gate.all_closed().await;
    }
}

/// hyper's connection settings from the limits. hyper's own HTTP/1 header timeout is off:
/// the watchdog keeps it, counted the way the setting means it.
fn builder(limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_header_bytes.max(limits::MIN_HEADER_BYTES));
    // Reset floods (CVE-2023-44487) are bounded by hyper's defaults for pending-accept and
    // locally-errored resets.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

/// The connection cap: one permit per open connection.
#[derive(Clone)]
struct Gate {
    permits: Arc<Semaphore>,
    size: u32,
}

impl Gate {
    fn new(max: usize) -> Self {
        let size = u32::try_from(max.clamp(1, Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX);
        Self {
            permits: Arc::new(Semaphore::new(size as usize)),
            size,
        }
    }

    fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }

    /// Resolves when no connection holds a permit.
    async fn all_closed(&self) {
        let _ = self.permits.acquire_many(self.size).await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    gate: Gate,
    builder: Arc<auto::Builder<TokioExecutor>>,
    state: AppState,
) {
    let closing = state.shutdown.reached(Phase::Closing);
    tokio::pin!(closing);
    loop {
        let tcp = tokio::select! {
            () = &mut closing => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
        };
        let Some(permit) = gate.admit() else {
            // At the cap: closed at once, never queued.
            state
                .metrics
                .connections
                .refused
                .fetch_add(1, Ordering::Relaxed);
            drop(tcp);
            continue;
        };
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "could not set TCP_NODELAY");
        }
        let (router, builder, state) = (router.clone(), builder.clone(), state.clone());
        tokio::spawn(async move {
            let open = &state.metrics.connections.open;
            open.fetch_add(1, Ordering::Relaxed);
            connection(tcp, router, builder, &state).await;
            open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
}

/// Resets and aborts are the client's business; anything else (out of file descriptors)
/// is logged and slows the loop a little instead of spinning.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accept failed");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}

/// One connection, until it ends, overstays its header or idle timeout (HTTP/1: dropped;
/// HTTP/2: sent GOAWAY), or the shutdown halts it.
async fn connection(
    tcp: TcpStream,
    router: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    state: &AppState,
) {
    let activity = Activity::new();
    let io = TokioIo::new(WatchedIo::new(tcp, activity.clone()));
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: Request<Incoming>| {
            respond(router.clone(), activity.clone(), request)
        })
    };
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let expired = activity.expired(state.settings.connections);
    let closing = state.shutdown.reached(Phase::Closing);
    let halted = state.shutdown.reached(Phase::Halted);
    tokio::pin!(expired, closing, halted);
    let cut = tokio::time::sleep(GOAWAY_PATIENCE);
    tokio::pin!(cut);
    let (mut told_to_close, mut overstayed) = (false, false);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "client connection ended with an error");
                }
                return;
            }
            () = &mut expired, if !overstayed => {
                state.metrics.connections.timed_out.fetch_add(1, Ordering::Relaxed);
                if !activity.speaks_http2() {
                    return;
                }
                // Idle HTTP/2: GOAWAY, and the connection ends as soon as the client sees it
                // (or is cut if the client never answers).
                overstayed = true;
                conn.as_mut().graceful_shutdown();
                told_to_close = true;
                cut.as_mut().reset(tokio::time::Instant::now() + GOAWAY_PATIENCE);
            }
            () = &mut cut, if overstayed => return,
            () = &mut closing, if !told_to_close => {
                conn.as_mut().graceful_shutdown();
                told_to_close = true;
            }
            () = &mut halted => return,
        }
    }
}

/// Routes one request, telling the watchdog when it starts and when its response has been
/// sent (its body dropped).
async fn respond(
    mut router: Router,
    activity: Arc<Activity>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let in_flight = activity.request_started(request.version() == Version::HTTP_2);
    let response = match tower_service::Service::call(&mut router, request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    Ok(response.map(|body| {
        Body::new(body.map_frame(move |frame| {
            let _ = &in_flight;
            frame
        }))
    }))
}
