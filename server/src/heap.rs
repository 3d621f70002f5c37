//! The process heap: mimalloc, and memory freed after a burst goes back to the OS.
//!
//! The broker binary's global allocator is mimalloc (`main.rs`; why: docs/decisions.md, "The
//! allocator"). mimalloc gives freed pages back to its arenas and purges them (MADV_DONTNEED)
//! only after a delay, and only when some thread calls into the allocator again: after a burst
//! of big pull bodies, an idle broker would keep them. So each shard that sees pull memory was
//! in use since its last look and none is now forces a collection ([`trim_when_idle`]). Every
//! shard runs it: mimalloc keeps a heap per thread, and a collection frees only the calling
//! thread's empty pages (plus the arenas' free memory), so memory freed on shard 1 is not
//! returned by shard 0's collection (measured: 344 MiB kept 10 s after four slow readers of
//! 4 KiB messages left, with the collection on shard 0 only).

use std::sync::Arc;
use std::time::Duration;

use crate::memory::MemoryBudget;

/// How often an idle broker looks whether to return its free memory.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(2);

/// Every [`TRIM_INTERVAL`], if pulls held memory since the last look and hold none now,
/// returns this thread's free pages to the OS. Runs on every shard, forever.
pub async fn trim_when_idle(memory: Arc<MemoryBudget>) {
    let mut busy_since_trim = false;
    let mut granted_seen = memory.granted_total_bytes();
    loop {
        compio::time::sleep(TRIM_INTERVAL).await;
        let granted = memory.granted_total_bytes();
        busy_since_trim |= granted != granted_seen || memory.used_bytes() > 0;
        granted_seen = granted;
        if busy_since_trim && memory.used_bytes() == 0 {
            trim();
            busy_since_trim = false;
        }
    }
}

/// Returns the free memory of mimalloc's arenas (and of the calling thread's heap) to the OS.
/// In a process whose global allocator is another one, it only collects mimalloc's unused
/// heap: harmless.
pub fn trim() {
    // SAFETY: mi_collect takes no pointers and may be called from any thread at any time;
    // with `force` it frees the thread's empty pages and purges the arenas' free memory.
    unsafe { libmimalloc_sys::mi_collect(true) };
    tracing::debug!("heap collected after a burst");
}
