//! One byte budget shared by every inference request body being read: twenty callers
//! posting 30 MiB each cannot make the process hold 600 MiB. A body takes its bytes from
//! the budget as they arrive (all of a declared `Content-Length` at once, before reading
//! any); when the budget cannot cover the next bytes the request is answered 503 with
//! `Retry-After` before more is read. The bytes go back when the request no longer holds
//! its body (the guard is dropped with it).

use std::sync::Arc;

use axum::body::{Body, HttpBody};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The shared budget (cheap to clone).
#[derive(Clone, Debug)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
}

/// Bytes of the budget held by one body.
#[derive(Debug)]
pub struct BodyGuard(Option<OwnedSemaphorePermit>);

/// Why a body was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the per-request limit (413).
    TooLarge { limit: usize },
    /// The shared budget is spent (503 with `Retry-After`).
    OverBudget,
    /// The connection broke or the body could not be read.
    Unreadable,
}

impl BodyBudget {
    pub fn new(bytes: usize) -> Self {
        Self {
            bytes: Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))),
        }
    }

    /// Bytes not taken by any body now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// Reads `body` (at most `limit` bytes) within the budget. A body refused for the
    /// budget is answered at once, and the rest of it is read and discarded in the
    /// background (a chunk at a time: no memory), so that the client, still sending, gets
    /// the 503 instead of a broken connection.
    pub async fn read(&self, body: Body, limit: usize) -> Result<(Bytes, BodyGuard), BodyError> {
        let declared = body.size_hint().lower() as usize;
        if declared > limit {
            return Err(BodyError::TooLarge { limit });
        }
        let mut stream = body.into_data_stream();
        let read = self.read_within(&mut stream, declared, limit).await;
        if read.as_ref().err() == Some(&BodyError::OverBudget) {
            tokio::spawn(discard(stream, limit));
        }
        read
    }

    async fn read_within(
        &self,
        stream: &mut axum::body::BodyDataStream,
        declared: usize,
        limit: usize,
    ) -> Result<(Bytes, BodyGuard), BodyError> {
        let mut guard = BodyGuard(None);
        self.take(&mut guard, declared)?;
        let mut reserved = declared;
        let mut out = BytesMut::with_capacity(declared);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| classify(&error, limit))?;
            let total = out.len() + chunk.len();
            if total > limit {
                return Err(BodyError::TooLarge { limit });
            }
            if total > reserved {
                self.take(&mut guard, total - reserved)?;
                reserved = total;
            }
            out.extend_from_slice(&chunk);
        }
        Ok((out.freeze(), guard))
    }

    fn take(&self, guard: &mut BodyGuard, bytes: usize) -> Result<(), BodyError> {
        if bytes == 0 {
            return Ok(());
        }
        let count = u32::try_from(bytes).map_err(|_| BodyError::OverBudget)?;
        let permit = self
            .bytes
            .clone()
            .try_acquire_many_owned(count)
            .map_err(|_| BodyError::OverBudget)?;
        match &mut guard.0 {
            Some(held) => held.merge(permit),
            None => guard.0 = Some(permit),
        }
        Ok(())
    }
}

/// A refused body's client may pause this long between chunks before it is given up on.
const DISCARD_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads the rest of a refused body and drops it (at most `limit` bytes).
async fn discard(mut stream: axum::body::BodyDataStream, limit: usize) {
    let mut seen = 0usize;
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(DISCARD_IDLE, stream.next()).await {
        seen += chunk.len();
        if seen > limit {
            break;
        }
    }
}

/// axum reports a body over its own limit as an error too.
fn classify(error: &axum::Error, limit: usize) -> BodyError {
    let too_large = std::error::Error::source(error)
        .is_some_and(|e| e.is::<http_body_util::LengthLimitError>());
    if too_large {
        BodyError::TooLarge { limit }
    } else {
        BodyError::Unreadable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(pieces: usize, size: usize) -> Body {
        let chunks =
            (0..pieces).map(move |_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; size])));
        Body::from_stream(futures_util::stream::iter(chunks))
    }

    #[tokio::test]
    async fn bodies_share_the_budget_and_give_it_back() {
        let budget = BodyBudget::new(1000);
        let (first, guard) = budget.read(chunked(6, 100), 10_000).await.unwrap();
        assert_eq!(first.len(), 600);
        assert_eq!(budget.available(), 400);
        // A second body that would take more than what is left is refused mid-read.
        assert_eq!(
            budget.read(chunked(5, 100), 10_000).await.unwrap_err(),
            BodyError::OverBudget
        );
        assert_eq!(
            budget.available(),
            400,
            "a refused body gives its bytes back"
        );
        drop((first, guard));
        assert_eq!(budget.available(), 1000);
        assert!(budget.read(chunked(9, 100), 10_000).await.is_ok());
    }

    #[tokio::test]
    async fn a_declared_length_is_taken_before_reading_and_limits_hold() {
        let budget = BodyBudget::new(1000);
        let body = Body::from(vec![b'x'; 1500]);
        assert_eq!(
            budget.read(body, 10_000).await.unwrap_err(),
            BodyError::OverBudget
        );
        let body = Body::from(vec![b'x'; 1500]);
        assert_eq!(
            budget.read(body, 1000).await.unwrap_err(),
            BodyError::TooLarge { limit: 1000 }
        );
        assert_eq!(
            budget.read(chunked(3, 400), 1000).await.unwrap_err(),
            BodyError::TooLarge { limit: 1000 }
        );
        assert_eq!(budget.available(), 1000);
    }
}
