//! The process heap (glibc malloc): memory freed after a burst goes back to the OS.
//!
//! glibc keeps freed memory for reuse. Two of its habits hold a burst's memory for good: its
//! mmap threshold rises to the size of the largest block freed (so after one 4 MiB pull
//! body, later bodies come from the heap instead of their own mappings), and the heap's
//! free pages are only returned from its top. So: the threshold is fixed at
//! [`MMAP_THRESHOLD_BYTES`] (bodies above it are mapped and unmapped on free), and a shard
//! that sees no pull memory in use trims the heap ([`trim_when_idle`]).

use std::sync::Arc;
use std::time::Duration;

use crate::memory::MemoryBudget;

/// Blocks at least this big get a mapping of their own, returned to the OS when freed.
pub const MMAP_THRESHOLD_BYTES: i32 = 1 << 20;

/// How often an idle broker trims its heap.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(2);

/// Fixes glibc's mmap threshold (call once, first thing in `main`). Elsewhere: nothing.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets an allocator parameter; it is called before any other
        // thread exists, and a refused value leaves the default in place.
        let accepted = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) };
        if accepted != 1 {
            tracing::warn!("the allocator refused a fixed mmap threshold; memory freed after a burst may stay with the process");
        }
    }
}

/// Every [`TRIM_INTERVAL`], if pulls held memory since the last look and hold none now,
/// returns the heap's free pages to the OS. Runs on one shard, forever.
pub async fn trim_when_idle(memory: Arc<MemoryBudget>) {
    let mut busy_since_trim = false;
    loop {
        compio::time::sleep(TRIM_INTERVAL).await;
        busy_since_trim |= memory.take_granted_bytes() > 0 || memory.used_bytes() > 0;
        if busy_since_trim && memory.used_bytes() == 0 {
            trim();
            busy_since_trim = false;
        }
    }
}

fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only releases free memory of the allocator's own arenas;
        // it takes the arenas' locks itself.
        let released = unsafe { libc::malloc_trim(0) };
        tracing::debug!(released = released != 0, "heap trimmed after a burst");
    }
}
