//! What one client connection may cost: time to send its head and body, time left idle,
//! header size and count, HTTP/2 streams; and how many connections may be open at once.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A request head not fully received within this (from the connection's start, or from
    /// the first byte of a later request) closes the connection.
    pub header_timeout: Duration,
    /// A request body not fully received within this of its head is answered 408.
    pub body_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Open client connections at most; beyond it new ones are closed at once.
    pub max_connections: usize,
    /// Request header fields at most (HTTP/1; more: 431).
    pub max_headers: usize,
    /// Bytes of a request head at most (HTTP/1 read buffer, HTTP/2 header list; more: 431).
    pub max_header_bytes: usize,
    /// Concurrent streams per HTTP/2 connection.
    pub http2_max_streams: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(75),
            max_connections: 10_000,
            max_headers: 100,
            max_header_bytes: 64 * 1024,
            http2_max_streams: 100,
        }
    }
}

/// hyper's smallest HTTP/1 read buffer.
pub const MIN_HEADER_BYTES: usize = 8192;
