//! The broker-wide memory budget (design.md §11): every pull reserves, before it reads, the
//! bytes its answer may take, and gives them back once the answer has been written to its
//! socket. A pull that finds the budget spent waits for it; so no number of clients pulling
//! big messages and never reading the answers can make the broker grow past the budget
//! (plus one message per pull in flight: a pull always returns its first message whole).
//!
//! The budget is process-wide (an atomic counter, `Send + Sync`): a pull reads on the
//! queue's owner shard and its answer waits in the outbox of the connection's shard. A
//! pull waiting for room sleeps until a permit is given back (no polling: thousands of
//! pulls of a slow reader may wait at once, and must cost nothing while they do). A
//! connection's own budget is closed with the connection, which ends its pulls' waits:
//! nobody would read their answers.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Poll, Waker};

/// Bytes of pull answers the broker may hold at once.
#[derive(Debug)]
pub struct MemoryBudget {
    capacity_bytes: usize,
    used_bytes: AtomicUsize,
    /// Bytes granted since the budget was made, wrapping (a burst shows
    /// here even when it is over before anyone looks at `used_bytes`).
    granted_bytes: AtomicUsize,
    /// Closed: no more permits (the connection it belongs to is gone).
    closed: AtomicBool,
    /// Tasks waiting for room, woken when a permit is given back or the budget closes.
    waiters: Mutex<Vec<Waker>>,
}

/// Bytes taken from a [`MemoryBudget`]; given back when dropped.
#[derive(Debug)]
pub struct BudgetPermit {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

impl MemoryBudget {
    pub fn new(capacity_bytes: usize) -> Arc<Self> {
        Arc::new(MemoryBudget {
            capacity_bytes,
            used_bytes: AtomicUsize::new(0),
            granted_bytes: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            waiters: Mutex::new(Vec::new()),
        })
    }

    pub fn capacity_bytes(&self) -> usize {
        self.capacity_bytes
    }

    /// Bytes taken now.
    pub fn used_bytes(&self) -> usize {
        self.used_bytes.load(Ordering::Acquire)
    }

    /// Takes `bytes` (at most the whole capacity) if that much is free.
    pub fn try_acquire(self: &Arc<Self>, bytes: usize) -> Option<BudgetPermit> {
        let bytes = bytes.min(self.capacity_bytes);
        self.used_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used + bytes <= self.capacity_bytes).then_some(used + bytes)
            })
            .ok()
            .map(|_| {
                self.granted_bytes.fetch_add(bytes, Ordering::Relaxed);
                BudgetPermit {
                    budget: Arc::clone(self),
                    bytes,
                }
            })
    }

    /// Bytes granted since the budget was made (wrapping): a reader that remembers the last
    /// value it saw learns whether anything was granted since.
    pub fn granted_total_bytes(&self) -> usize {
        self.granted_bytes.load(Ordering::Relaxed)
    }

    /// Takes `bytes` (at most the whole capacity), waiting until that much is free;
    /// `None` once the budget is closed.
    pub async fn acquire(self: &Arc<Self>, bytes: usize) -> Option<BudgetPermit> {
        poll_fn(|cx| {
            if self.closed.load(Ordering::Acquire) {
                return Poll::Ready(None);
            }
            if let Some(permit) = self.try_acquire(bytes) {
                return Poll::Ready(Some(permit));
            }
            self.waiters
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(cx.waker().clone());
            // A permit given back between the try and the registration woke nobody: try
            // once more now that this task is registered.
            if self.closed.load(Ordering::Acquire) {
                return Poll::Ready(None);
            }
            match self.try_acquire(bytes) {
                Some(permit) => Poll::Ready(Some(permit)),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Closes the budget: waiting and later acquisitions get `None`.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake_waiters();
    }

    fn wake_waiters(&self) {
        let waiters =
            std::mem::take(&mut *self.waiters.lock().unwrap_or_else(PoisonError::into_inner));
        for waker in waiters {
            waker.wake();
        }
    }
}

impl BudgetPermit {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Holds `bytes` instead: what the answer really took once read. Growing never waits
    /// (the bytes are already in memory); it may take the budget past its capacity by that
    /// much, which later acquisitions wait out.
    pub fn resize(&mut self, bytes: usize) {
        if bytes >= self.bytes {
            self.budget
                .used_bytes
                .fetch_add(bytes - self.bytes, Ordering::AcqRel);
        } else {
            self.budget
                .used_bytes
                .fetch_sub(self.bytes - bytes, Ordering::AcqRel);
        }
        self.bytes = bytes;
    }
}

impl Drop for BudgetPermit {
    fn drop(&mut self) {
        self.budget
            .used_bytes
            .fetch_sub(self.bytes, Ordering::AcqRel);
        self.budget.wake_waiters();
    }
}

/// A sane default budget: a quarter of physical memory (1 GiB when unknown).
pub fn default_budget_bytes() -> usize {
    // SAFETY: sysconf only reads system configuration values.
    let (pages, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGE_SIZE),
        )
    };
    match (usize::try_from(pages), usize::try_from(page_size)) {
        (Ok(pages), Ok(page_size)) if pages > 0 && page_size > 0 => {
            pages.saturating_mul(page_size) / 4
        }
        _ => 1 << 30,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_give_their_bytes_back_when_dropped() {
        let budget = MemoryBudget::new(100);
        let a = budget.try_acquire(60).unwrap();
        assert!(budget.try_acquire(50).is_none());
        let b = budget.try_acquire(40).unwrap();
        assert_eq!(budget.used_bytes(), 100);
        drop(a);
        assert_eq!(budget.used_bytes(), 40);
        drop(b);
        assert_eq!(budget.used_bytes(), 0);
    }

    #[test]
    fn a_permit_resized_to_what_was_read_accounts_exactly() {
        let budget = MemoryBudget::new(100);
        let mut permit = budget.try_acquire(80).unwrap();
        permit.resize(10);
        assert_eq!(budget.used_bytes(), 10);
        permit.resize(130);
        assert_eq!(
            budget.used_bytes(),
            130,
            "growing past the capacity is accounted"
        );
        assert!(budget.try_acquire(1).is_none());
        drop(permit);
        assert_eq!(budget.used_bytes(), 0);
    }

    #[test]
    fn a_request_larger_than_the_budget_takes_the_whole_budget() {
        let budget = MemoryBudget::new(100);
        let permit = budget.try_acquire(1_000).unwrap();
        assert_eq!(permit.bytes(), 100);
    }

    #[test]
    fn a_waiting_acquire_gets_the_bytes_another_permit_frees() {
        let budget = MemoryBudget::new(100);
        let held = budget.try_acquire(100).unwrap();
        let runtime = compio::runtime::Runtime::new().unwrap();
        let got = runtime.block_on(async {
            let waiter = compio::runtime::spawn({
                let budget = Arc::clone(&budget);
                async move { budget.acquire(50).await.map(|p| p.bytes()) }
            });
            compio::time::sleep(std::time::Duration::from_millis(20)).await;
            drop(held);
            waiter.await.unwrap()
        });
        assert_eq!(got, Some(50));
    }

    #[test]
    fn closing_the_budget_ends_waiting_acquires() {
        let budget = MemoryBudget::new(100);
        let _held = budget.try_acquire(100).unwrap();
        let runtime = compio::runtime::Runtime::new().unwrap();
        let got = runtime.block_on(async {
            let waiter = compio::runtime::spawn({
                let budget = Arc::clone(&budget);
                async move { budget.acquire(50).await.is_some() }
            });
            compio::time::sleep(std::time::Duration::from_millis(20)).await;
            budget.close();
            waiter.await.unwrap()
        });
        assert!(!got, "a closed budget grants nothing");
    }
}
