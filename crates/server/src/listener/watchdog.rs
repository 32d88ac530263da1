//! Per-connection timeouts hyper does not give the way the settings mean them: a request
//! head must arrive within the header timeout (counted from the connection's start, or
//! from the first byte of a later request), and a keep-alive connection with no request in
//! flight is closed after the idle timeout. (hyper's own HTTP/1 header timeout starts as
//! soon as a connection goes idle, so it would close every idle keep-alive connection
//! after the header timeout; HTTP/2 has none.)
//!
//! The connection's I/O ([`WatchedIo`]) notes the first byte read while idle; the service
//! notes each request's start and the end of its response ([`Activity::request_started`]);
//! [`Activity::expired`] resolves when the connection has overstayed and must be dropped.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::limits::ConnectionLimits;

/// What a connection is doing, as far as its deadlines care.
pub struct Activity {
    state: Mutex<State>,
    /// Set by the first byte read since the connection went idle (the fast path of reads).
    reading: AtomicBool,
    changed: Notify,
}

struct State {
    in_flight: usize,
    /// When the connection was accepted or its last response ended.
    idle_since: Instant,
    /// The first byte read since `idle_since`.
    first_byte: Option<Instant>,
    /// No request yet: the head is due within the header timeout of the accept.
    fresh: bool,
    http2: bool,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                in_flight: 0,
                idle_since: Instant::now(),
                first_byte: None,
                fresh: true,
                http2: false,
            }),
            reading: AtomicBool::new(false),
            changed: Notify::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A request's head arrived; the returned guard ends it when dropped (with the
    /// response body, once the response is written).
    pub fn request_started(self: &Arc<Self>, http2: bool) -> RequestGuard {
        {
            let mut state = self.state();
            state.in_flight += 1;
            state.fresh = false;
            state.http2 |= http2;
        }
        self.changed.notify_one();
        RequestGuard(self.clone())
    }

    fn request_ended(&self) {
        {
            let mut state = self.state();
            state.in_flight = state.in_flight.saturating_sub(1);
            if state.in_flight == 0 {
                state.idle_since = Instant::now();
                state.first_byte = None;
                self.reading.store(false, Ordering::Release);
            }
        }
        self.changed.notify_one();
    }

    /// Called for every read that returned bytes: only the first one after going idle
    /// takes the lock.
    fn bytes_read(&self) {
        if self.reading.load(Ordering::Acquire) || self.reading.swap(true, Ordering::AcqRel) {
            return;
        }
        {
            let mut state = self.state();
            if state.in_flight == 0 && state.first_byte.is_none() {
                state.first_byte = Some(Instant::now());
            }
        }
        self.changed.notify_one();
    }

    /// Whether a request on this connection came over HTTP/2 (an overstaying HTTP/2
    /// connection is sent GOAWAY rather than cut).
    pub fn speaks_http2(&self) -> bool {
        self.state().http2
    }

    /// When the connection must be closed if nothing changes; `None` while a request is in
    /// flight (its body and response have deadlines of their own).
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        let state = self.state();
        if state.in_flight > 0 {
            return None;
        }
        Some(if state.fresh {
            state.idle_since + limits.header_timeout
        } else if let (Some(first), false) = (state.first_byte, state.http2) {
            first + limits.header_timeout
        } else {
            state.idle_since + limits.idle_timeout
        })
    }

    /// Resolves when the connection overstayed its header or idle timeout.
    pub async fn expired(&self, limits: ConnectionLimits) {
        loop {
            let changed = self.changed.notified();
            match self.deadline(&limits) {
                None => changed.await,
                Some(deadline) if deadline <= Instant::now() => return,
                Some(deadline) => {
                    tokio::select! {
                        () = changed => {}
                        () = tokio::time::sleep_until(deadline) => {}
                    }
                }
            }
        }
    }
}

/// One request in flight on the connection.
pub struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// A connection's socket, reporting reads to its [`Activity`].
pub struct WatchedIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> WatchedIo<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WatchedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WatchedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            ..ConnectionLimits::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_the_connections_state() {
        let activity = Activity::new();
        let start = Instant::now();
        assert_eq!(
            activity.deadline(&limits()),
            Some(start + limits().header_timeout)
        );
        let guard = activity.request_started(false);
        assert_eq!(activity.deadline(&limits()), None);
        tokio::time::advance(Duration::from_secs(3)).await;
        drop(guard);
        let idle = Instant::now();
        assert_eq!(
            activity.deadline(&limits()),
            Some(idle + limits().idle_timeout)
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        activity.bytes_read();
        let first = Instant::now();
        assert_eq!(
            activity.deadline(&limits()),
            Some(first + limits().header_timeout)
        );
        // HTTP/2 connections are judged by the idle timeout between requests.
        let h2 = Activity::new();
        drop(h2.request_started(true));
        h2.bytes_read();
        assert_eq!(
            h2.deadline(&limits()),
            Some(Instant::now() + limits().idle_timeout)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_expires_and_a_busy_one_does_not() {
        let activity = Activity::new();
        let guard = activity.request_started(false);
        let waiting = tokio::spawn({
            let activity = activity.clone();
            async move { activity.expired(limits()).await }
        });
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert!(!waiting.is_finished());
        drop(guard);
        tokio::time::sleep(limits().idle_timeout + Duration::from_secs(1)).await;
        assert!(waiting.is_finished());
    }
}
