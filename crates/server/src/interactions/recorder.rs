//! The recorder: invocation rows reach the database off the request path, through a
//! bounded queue, and every write can be waited for.
//!
//! A request reserves two queue places when it begins ([`Recorder::reserve`]): one is used at
//! once for its running row (written while the upstream call runs), the other when it ends,
//! for its final record. A full queue (by count or by bytes of content) refuses the request
//! up front (503 with `Retry-After`) rather than dropping a record after the work was done.
//!
//! One writer task drains the queue: whatever has accumulated while the previous write ran
//! is written together (leader/follower group commit: no timed window, so an idle system
//! commits at once and a busy one in large batches), one transaction per organization,
//! retrying with back-off while the database is unavailable. Each entry carries a
//! [`Commit`] that says when it is in the database; durable recording holds the end of an
//! answer until then. On shutdown the queue closes and the writer drains it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use switchboard_core::OrgId;
use switchboard_store::{
    InvocationBatch, InvocationRecord, InvocationStatus, RunningInvocation, Store, StoreError,
};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use switchboard_telemetry::names;

use super::inflight::InFlight;

/// Entries written per batch at most.
const BATCH: usize = 512;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// The error name of a record whose caller was told it could not be recorded in time.
pub const RECORDING_UNAVAILABLE: &str = "recording_unavailable";

/// What the queue carries.
pub enum Entry {
    Begun(RunningInvocation, Arc<Commit>),
    Ended(InvocationRecord, Arc<Commit>),
}

/// A reserved place for the final record; sending into it never waits and never fails.
pub type Slot = mpsc::OwnedPermit<Entry>;

/// Why no place could be reserved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueueError {
    #[error("the invocation recorder is at capacity")]
    Full,
    #[error("the invocation recorder is shutting down")]
    Closed,
}

/// Why a queued entry did not reach the database in time.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NotRecorded {
    /// The database did not take it within the caller's patience; it stays queued and is
    /// stored (as [`RECORDING_UNAVAILABLE`] when it was a final record) once it can be.
    #[error("the invocation record could not be written in time")]
    Unavailable,
    /// The database refused it for good (logged by the writer).
    #[error("the invocation record could not be stored")]
    Lost,
}

const QUEUED: u8 = 0;
const WRITING: u8 = 1;
const WRITTEN: u8 = 2;
const ABANDONED: u8 = 3;
const LOST: u8 = 4;

/// Where one queued entry stands. The writer moves it `QUEUED → WRITING → WRITTEN` (or back
/// to `QUEUED` after a failed attempt); a caller that stops waiting moves it `QUEUED →
/// ABANDONED`, which the writer sees before its next attempt, so the stored record always
/// matches what the caller was told.
#[derive(Default)]
pub struct Commit {
    state: AtomicU8,
    changed: Notify,
}

impl Commit {
    fn set(&self, state: u8) {
        self.state.store(state, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// The writer takes the entry into an attempt; `false` when its caller gave up.
    fn begin_attempt(&self) -> bool {
        let taken =
            self.state
                .compare_exchange(QUEUED, WRITING, Ordering::AcqRel, Ordering::Acquire);
        matches!(taken, Ok(_) | Err(WRITING))
    }

    /// Waits until the entry is in the database, at most `patience` (plus the end of an
    /// attempt already under way, itself bounded by the store's call deadline).
    pub async fn wait(&self, patience: Duration) -> Result<(), NotRecorded> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.state.load(Ordering::Acquire) {
                WRITTEN => return Ok(()),
                LOST => return Err(NotRecorded::Lost),
                ABANDONED => return Err(NotRecorded::Unavailable),
                _ => {}
            }
            if tokio::time::Instant::now() < deadline {
                let _ = tokio::time::timeout_at(deadline, changed).await;
                continue;
            }
            let gave_up =
                self.state
                    .compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire);
            if gave_up.is_ok() {
                return Err(NotRecorded::Unavailable);
            }
            // An attempt is under way: its outcome decides.
            changed.await;
        }
    }
}

pub struct Recorder {
    sender: RwLock<Option<mpsc::Sender<Entry>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    bytes: Arc<QueueBytes>,
}

/// Content bytes queued, against the budget.
struct QueueBytes {
    queued: AtomicUsize,
    budget: usize,
}

impl QueueBytes {
    fn add(&self, n: usize) {
        self.queued.fetch_add(n, Ordering::Relaxed);
    }

    fn sub(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::Relaxed);
    }
}

/// Both places of one invocation: the running row's, used at once, and the final record's.
pub struct Places {
    pub begun: Slot,
    pub ended: Slot,
}

impl Recorder {
    /// Starts the writer task (call inside the runtime). `capacity` invocations may be in
    /// flight or queued; `byte_budget` bytes of content may wait to be written.
    pub fn start(
        store: Arc<dyn Store>,
        capacity: usize,
        byte_budget: usize,
        inflight: Arc<InFlight>,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(capacity.max(1).saturating_mul(2));
        let bytes = Arc::new(QueueBytes {
            queued: AtomicUsize::new(0),
            budget: byte_budget,
        });
        let writer = tokio::spawn(write_loop(store, receiver, inflight, bytes.clone()));
        Self {
            sender: RwLock::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
            bytes,
        }
    }

    pub fn reserve(&self) -> Result<Places, QueueError> {
        if self.bytes.queued.load(Ordering::Relaxed) > self.bytes.budget {
            return Err(QueueError::Full);
        }
        let sender = self
            .sender
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(QueueError::Closed)?;
        let take = |sender: mpsc::Sender<Entry>| {
            sender.try_reserve_owned().map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => QueueError::Full,
                mpsc::error::TrySendError::Closed(_) => QueueError::Closed,
            })
        };
        let begun = take(sender.clone())?;
        let ended = take(sender)?;
        Ok(Places { begun, ended })
    }

    /// Queues a final record into its place; its content counts against the byte budget
    /// until written.
    pub fn send_ended(&self, slot: Slot, record: InvocationRecord) -> Arc<Commit> {
        let commit = Arc::new(Commit::default());
        self.bytes.add(content_bytes(&record));
        slot.send(Entry::Ended(record, commit.clone()));
        commit
    }

    /// Queue places in use: reserved by invocations in flight, or holding entries waiting
    /// to be written (`/metrics`).
    pub fn places_in_use(&self) -> usize {
        let sender = self.sender.read().unwrap_or_else(PoisonError::into_inner);
        sender
            .as_ref()
            .map_or(0, |s| s.max_capacity() - s.capacity())
    }

    /// Stops taking new invocations and waits until every queued record is written.
    /// Recordings still holding a place keep the queue open until they finish.
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

fn content_bytes(record: &InvocationRecord) -> usize {
    record.content.as_ref().map_or(0, |c| {
        c.prompt.len() + c.response.as_ref().map_or(0, String::len)
    })
}

async fn write_loop(
    store: Arc<dyn Store>,
    mut receiver: mpsc::Receiver<Entry>,
    inflight: Arc<InFlight>,
    bytes: Arc<QueueBytes>,
) {
    let mut entries = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut entries, BATCH).await > 0 {
        let mut batch = Batch::from_entries(entries.drain(..));
        batch.write(store.as_ref()).await;
        for record in &batch.rows.ended {
            inflight.forget(record.org_id, &record.id);
        }
        bytes.sub(batch.rows.ended.iter().map(content_bytes).sum());
        batch.settle();
    }
    tracing::debug!("invocation writer drained");
}

/// One write: running rows and final records, with the commits to settle.
struct Batch {
    rows: InvocationBatch,
    commits: Vec<Arc<Commit>>,
    /// The final records' commits, index for index with `ended`.
    ended_commits: Vec<Arc<Commit>>,
    outcome: u8,
}

impl Batch {
    /// A running row whose final record is in the same batch is not written at all.
    fn from_entries(entries: impl Iterator<Item = Entry>) -> Self {
        let mut begun = Vec::new();
        let mut ended = Vec::new();
        let mut commits = Vec::new();
        let mut ended_commits = Vec::new();
        for entry in entries {
            match entry {
                Entry::Begun(running, commit) => {
                    begun.push(running);
                    commits.push(commit);
                }
                Entry::Ended(record, commit) => {
                    ended.push(record);
                    ended_commits.push(commit);
                }
            }
        }
        let finished: HashSet<(OrgId, &str)> =
            ended.iter().map(|r| (r.org_id, r.id.as_str())).collect();
        begun.retain(|r| !finished.contains(&(r.org_id, r.id.as_str())));
        Self {
            rows: InvocationBatch { begun, ended },
            commits,
            ended_commits,
            outcome: WRITTEN,
        }
    }

    /// Writes until the database takes the batch or refuses it for good.
    async fn write(&mut self, store: &dyn Store) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            self.begin_attempt();
            let started = std::time::Instant::now();
            let written = store.write_invocations(&self.rows).await;
            let result = if written.is_ok() { "ok" } else { "error" };
            metrics::histogram!(names::RECORDER_WRITE, "result" => result)
                .record(started.elapsed().as_secs_f64());
            match written {
                Ok(report) => {
                    for (asked, stored) in report.renamed {
                        tracing::warn!(%asked, %stored, "invocation id was taken; stored renamed");
                    }
                    return;
                }
                Err(error) if is_transient(&error) => {
                    tracing::warn!(%error, begun = self.rows.begun.len(), ended = self.rows.ended.len(),
                        "cannot write invocation records yet; retrying");
                    self.attempt_failed();
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(error) => {
                    // Retrying cannot help (an unknown organization, a missing master key
                    // version): keep the queue moving and say so loudly.
                    tracing::error!(%error, count = self.rows.ended.len(), "invocation records cannot be stored");
                    self.outcome = LOST;
                    return;
                }
            }
        }
    }

    /// Takes every entry into the attempt; a final record whose caller gave up waiting is
    /// stored as what that caller was told: failed, not recorded in time.
    fn begin_attempt(&mut self) {
        for commit in &self.commits {
            commit.begin_attempt();
        }
        for (record, commit) in self.rows.ended.iter_mut().zip(&self.ended_commits) {
            if !commit.begin_attempt() && record.error_name.is_none() {
                record.status = InvocationStatus::Failed;
                record.error_name = Some(RECORDING_UNAVAILABLE.to_owned());
            }
        }
    }

    fn attempt_failed(&self) {
        for commit in self.commits.iter().chain(&self.ended_commits) {
            let _ =
                commit
                    .state
                    .compare_exchange(WRITING, QUEUED, Ordering::AcqRel, Ordering::Acquire);
            commit.changed.notify_waiters();
        }
    }

    fn settle(&self) {
        for commit in self.commits.iter().chain(&self.ended_commits) {
            if commit.state.load(Ordering::Acquire) != ABANDONED || self.outcome == LOST {
                commit.set(self.outcome);
            }
        }
    }
}

/// Failures worth waiting out: the database or the disk being unavailable for a while.
fn is_transient(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Database(_) | StoreError::Io(_) | StoreError::Timeout(_)
    )
}
