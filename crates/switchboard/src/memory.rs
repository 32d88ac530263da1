//! Giving memory back after a burst.
//!
//! glibc's allocator keeps freed memory in its per-thread arenas: after 2,000 concurrent
//! streams the gateway's RSS stayed at its 200 MiB peak long after they ended (measured in
//! `bench/`). A background task looks at the allocator's own accounting once per period and,
//! when a large share of what it holds is free, asks it to return that memory to the kernel
//! (`malloc_trim`, which also releases free pages in the middle of the heaps). The check is a
//! few microseconds; the trim runs only after load has dropped, never on the request path.
//!
//! Other allocators (musl, or a non-glibc target) return memory on their own terms; the task
//! is not started there.

use std::time::Duration;

/// Trim once memory in use has dropped this far below its peak since the last trim… (small
/// enough that what a burst's tail frees after an earlier trim is returned too; at most one
/// trim per period either way)
const MIN_DROP_BYTES: usize = 2 << 20;
/// …and what is free is at least this share (in percent) of what the allocator holds.
const MIN_FREE_PERCENT: usize = 25;

/// What the allocator holds, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapUsage {
    /// Obtained from the kernel (heap arenas and large mappings). Pages a trim released
    /// still count here and in `free`: glibc only advises the kernel it may take them.
    pub held: usize,
    /// Of `held`, free for reuse.
    pub free: usize,
}

impl HeapUsage {
    fn in_use(self) -> usize {
        self.held.saturating_sub(self.free)
    }
}

/// Decides when a trim is due: after a burst, once. Because released pages still count as
/// free, "much is free" alone would trim every period forever; a burst is instead seen as
/// memory in use falling well below its peak since the last trim.
#[derive(Debug, Default)]
pub struct TrimPolicy {
    peak_in_use: usize,
}

impl TrimPolicy {
    /// Takes one reading; `true` when a trim should run now.
    pub fn observe(&mut self, usage: HeapUsage) -> bool {
        let in_use = usage.in_use();
        self.peak_in_use = self.peak_in_use.max(in_use);
        let dropped = self.peak_in_use - in_use >= MIN_DROP_BYTES;
        let mostly_free = usage.free * 100 >= usage.held * MIN_FREE_PERCENT;
        if dropped && mostly_free {
            self.peak_in_use = in_use;
            return true;
        }
        false
    }
}

/// Starts the trimming task (call inside the runtime); a no-op where it does not apply.
pub fn spawn_trimmer(period: Duration) {
    if heap_usage().is_none() {
        return;
    }
    tokio::spawn(async move {
        let mut policy = TrimPolicy::default();
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if heap_usage().is_some_and(|usage| policy.observe(usage)) {
                // A trim walks every arena under its lock: keep it off the async workers.
                let _ = tokio::task::spawn_blocking(trim).await;
            }
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use super::HeapUsage;

    pub fn heap_usage() -> Option<HeapUsage> {
        // SAFETY: mallinfo2 only reads the allocator's statistics (glibc ≥ 2.33); it takes
        // no pointers and returns a plain struct.
        let info = unsafe { libc::mallinfo2() };
        Some(HeapUsage {
            held: info.arena + info.hblkhd,
            free: info.fordblks,
        })
    }

    pub fn trim() {
        // SAFETY: malloc_trim has no preconditions; it releases free memory of every arena
        // and returns whether any was released.
        let released = unsafe { libc::malloc_trim(0) };
        tracing::debug!(released = released == 1, "returned free heap memory");
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub use glibc::{heap_usage, trim};

/// Not glibc: nothing to report or trim.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn heap_usage() -> Option<HeapUsage> {
    None
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trim_follows_each_burst_once() {
        let usage = |held_mib: usize, free_mib: usize| HeapUsage {
            held: held_mib << 20,
            free: free_mib << 20,
        };
        let mut policy = TrimPolicy::default();
        assert!(!policy.observe(usage(16, 4)), "idle: nothing to give back");
        assert!(!policy.observe(usage(200, 10)), "under load");
        assert!(
            !policy.observe(usage(200, 14)),
            "a small dip is not a burst's end"
        );
        assert!(policy.observe(usage(200, 185)), "after the burst");
        assert!(
            !policy.observe(usage(200, 185)),
            "released pages still count as free: no second trim"
        );
        assert!(!policy.observe(usage(210, 100)), "busy again");
        assert!(policy.observe(usage(210, 190)), "the next burst ends");
    }

    /// What matters (RSS back near idle after a burst) is measured by `bench/`; here: the
    /// allocator's figures are read and account for memory just freed.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_memory_is_reported_as_free() {
        // Every other block freed: holes in the middle of the heap, which glibc keeps
        // (freed memory at the top it gives back by itself).
        let mut blocks: Vec<Option<Vec<u8>>> =
            (0..128).map(|_| Some(vec![1u8; 32 << 10])).collect();
        for block in blocks.iter_mut().step_by(2) {
            block.take();
        }
        let usage = heap_usage().expect("glibc reports its heap");
        assert!(usage.held >= usage.free, "{usage:?}");
        assert!(usage.free >= 3 << 19, "2 MiB were just freed: {usage:?}");
        trim();
        drop(blocks);
    }
}
