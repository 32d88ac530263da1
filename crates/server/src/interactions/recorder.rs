//! The recorder: invocation records reach the database off the request path, through a
//! bounded queue.
//!
//! A request reserves its queue slot when it begins ([`Recorder::reserve`]), so when the
//! queue is full it is refused up front (503 with `Retry-After`) rather than having its
//! record dropped after the work was done; the slot is filled when the invocation ends.
//! One writer task drains the queue in batches (a partial batch waits a few milliseconds for
//! more: group commit), one transaction per organization and batch,
//! retrying with back-off while the database is unavailable. On shutdown the sender is
//! closed and the writer drains whatever is queued before [`Recorder::close`] returns.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use switchboard_core::OrgId;
use switchboard_store::{InvocationRecord, Store, StoreError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::inflight::InFlight;

/// Records written per batch at most.
const BATCH: usize = 256;
/// How long a partial batch waits for more records (see [`gather_more`]). Records are
/// visible to polling while they wait (`inflight`), so only the database write is later.
const GROUP_COMMIT_WINDOW: Duration = Duration::from_millis(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A reserved queue slot; sending into it never waits and never fails.
pub type Slot = mpsc::OwnedPermit<InvocationRecord>;

/// Why no slot could be reserved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueueError {
    #[error("the invocation recorder is at capacity")]
    Full,
    #[error("the invocation recorder is shutting down")]
    Closed,
}

pub struct Recorder {
    sender: RwLock<Option<mpsc::Sender<InvocationRecord>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Recorder {
    /// Starts the writer task (call inside the runtime).
    pub fn start(store: Arc<dyn Store>, capacity: usize, inflight: Arc<InFlight>) -> Self {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let writer = tokio::spawn(write_loop(store, receiver, inflight));
        Self {
            sender: RwLock::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
        }
    }

    pub fn reserve(&self) -> Result<Slot, QueueError> {
        let sender = self
            .sender
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(QueueError::Closed)?;
        sender.try_reserve_owned().map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => QueueError::Full,
            mpsc::error::TrySendError::Closed(_) => QueueError::Closed,
        })
    }

    /// Stops taking new invocations and waits until every queued record is written.
    /// Recordings still holding a slot keep the queue open until they finish.
    pub async fn close(&self) {
        self.sender
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer
            && let Err(error) = writer.await
        {
            tracing::error!(%error, "the invocation writer stopped abnormally");
        }
    }
}

async fn write_loop(
    store: Arc<dyn Store>,
    mut receiver: mpsc::Receiver<InvocationRecord>,
    inflight: Arc<InFlight>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        gather_more(&mut receiver, &mut batch).await;
        let mut by_org: BTreeMap<OrgId, Vec<InvocationRecord>> = BTreeMap::new();
        for record in batch.drain(..) {
            by_org.entry(record.org_id).or_default().push(record);
        }
        for records in by_org.into_values() {
            write_org_batch(store.as_ref(), &records).await;
            for record in &records {
                inflight.forget(record.org_id, &record.id);
            }
        }
    }
    tracing::debug!("invocation writer drained");
}

/// Group commit: a batch that is not full waits [`GROUP_COMMIT_WINDOW`] for more records,
/// so steady light traffic costs one transaction per window instead of one per request.
/// (On shutdown the queue closes and whatever is queued is taken at once.)
async fn gather_more(
    receiver: &mut mpsc::Receiver<InvocationRecord>,
    batch: &mut Vec<InvocationRecord>,
) {
    if batch.len() >= BATCH || receiver.is_closed() {
        return;
    }
    tokio::time::sleep(GROUP_COMMIT_WINDOW).await;
    while batch.len() < BATCH {
        match receiver.try_recv() {
            Ok(record) => batch.push(record),
            Err(_) => break,
        }
    }
}

/// Writes one organization's records (one transaction, so a retry never duplicates).
async fn write_org_batch(store: &dyn Store, records: &[InvocationRecord]) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        match store.insert_invocations(records.to_vec()).await {
            Ok(report) => {
                for (asked, stored) in report.renamed {
                    tracing::warn!(%asked, %stored, "invocation id was taken; stored renamed");
                }
                return;
            }
            Err(error) if is_transient(&error) => {
                tracing::warn!(%error, count = records.len(), "cannot write invocation records yet; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(error) => {
                // Retrying cannot help (an unknown organization, a missing master key
                // version): keep the queue moving and say so loudly.
                tracing::error!(%error, count = records.len(), "invocation records cannot be stored");
                return;
            }
        }
    }
}

/// Failures worth waiting out: the database or the disk being unavailable for a while.
fn is_transient(error: &StoreError) -> bool {
    matches!(error, StoreError::Database(_) | StoreError::Io(_))
}
