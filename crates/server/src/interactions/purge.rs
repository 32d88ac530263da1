//! The background purge of expired interaction content: bounded batches, each its own
//! transaction, until nothing is left; on PostgreSQL the store lets one replica at a time
//! do it (the others skip the round).

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::records::Timestamp;
use switchboard_store::{PurgePolicy, Store};
use tokio::task::JoinHandle;

/// Keys deleted and ciphertexts cleared per transaction.
const BATCH: u32 = 500;

/// Purges now, then every `interval`.
pub fn spawn(store: Arc<dyn Store>, interval: Duration, max_retention_days: u32) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval.max(Duration::from_secs(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            purge_round(store.as_ref(), max_retention_days).await;
        }
    })
}

/// Runs batches until the store says it is done; errors end the round (the next retries).
pub async fn purge_round(store: &dyn Store, max_retention_days: u32) {
    let (mut keys, mut contents) = (0, 0);
    loop {
        let policy = PurgePolicy {
            now: Timestamp::now(),
            max_retention_days,
            batch: BATCH,
        };
        match store.purge_interactions(policy).await {
            Ok(report) if report.locked_elsewhere => {
                tracing::debug!("another replica is purging interaction content");
                return;
            }
            Ok(report) => {
                keys += report.keys_deleted;
                contents += report.contents_erased;
                if !report.more {
                    break;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "interaction content purge failed; will retry");
                return;
            }
        }
    }
    if keys + contents > 0 {
        tracing::info!(keys, contents, "purged expired interaction content");
    }
}
