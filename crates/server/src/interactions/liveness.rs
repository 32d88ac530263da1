//! Which processes are alive, and what becomes of the invocations of those that are not.
//!
//! Every serving process writes a heartbeat row; its running invocations carry its
//! instance id. A process whose heartbeat is older than [`LivenessSettings::stale_after`]
//! is dead (killed, crashed, its machine gone), and any replica turns its running rows
//! into `Failed` records named `interrupted`, each claimed by the transaction that deletes
//! it. On SQLite (one node by design) every other instance is dead the moment this one
//! starts, so a restart recovers at once; on PostgreSQL the stale bound decides.

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::records::Timestamp;
use switchboard_store::{Store, StoreError};
use tokio::task::JoinHandle;

/// Running rows recovered per store call.
const RECOVERY_BATCH: u32 = 500;

#[derive(Clone, Copy, Debug)]
pub struct LivenessSettings {
    /// How often this process writes its heartbeat (and looks for dead ones).
    pub heartbeat: Duration,
    /// A heartbeat older than this marks its process dead.
    pub stale_after: Duration,
}

impl Default for LivenessSettings {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(2),
            stale_after: Duration::from_secs(15),
        }
    }
}

/// Writes the first heartbeat, recovers what dead processes left (on SQLite: everything
/// not this process's), and starts the loop that keeps doing both.
pub async fn start(
    store: Arc<dyn Store>,
    instance: &str,
    settings: LivenessSettings,
) -> Result<JoinHandle<()>, StoreError> {
    let started = Timestamp::now();
    store.heartbeat(instance, started).await?;
    let stale_before = if store.backend() == "sqlite" {
        Timestamp::now()
    } else {
        ago(settings.stale_after)
    };
    recover(store.as_ref(), instance, stale_before).await;
    let instance = instance.to_owned();
    Ok(tokio::spawn(async move {
        let mut tick = tokio::time::interval(settings.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(error) = store.heartbeat(&instance, started).await {
                tracing::warn!(%error, "cannot write this process's heartbeat");
                continue;
            }
            recover(store.as_ref(), &instance, ago(settings.stale_after)).await;
        }
    }))
}

/// Recovers in batches until nothing is left; failures wait for the next round.
async fn recover(store: &dyn Store, instance: &str, stale_before: Timestamp) {
    loop {
        match store
            .recover_interrupted(instance, stale_before, RECOVERY_BATCH)
            .await
        {
            Ok(0) => return,
            Ok(n) => {
                tracing::warn!(
                    recovered = n,
                    "invocations of a stopped process recorded as interrupted"
                );
                if n < u64::from(RECOVERY_BATCH) {
                    return;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot recover interrupted invocations yet");
                return;
            }
        }
    }
}

fn ago(duration: Duration) -> Timestamp {
    let now = time::OffsetDateTime::now_utc();
    Timestamp::from_datetime(now - duration)
}
