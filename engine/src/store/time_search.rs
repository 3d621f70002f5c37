//! Store-time lookups of a shard's store: SEARCH_OFFSET_BY_TIMESTAMP (a bisection over a
//! ConsumeQueue, [`crate::consumequeue::ConsumeQueue::search_by_timestamp`], reading each
//! probed record's STORETIMESTAMP from the CommitLog), GET_EARLIEST_MSG_STORETIME and the
//! store time of the message at an offset (GET_TOPIC_STATS_INFO's last update).
//!
//! **Invariants.** Only dispatched records are probed (bytes below `dispatched_end`); a
//! record header too short to hold STORETIMESTAMP is [`StoreError::Corrupt`], not a panic
//! (the disk controls it).
//!
//! **Crash.** Read-only: a crash leaves nothing behind.

use ringmq_protocol::message::sysflag;

use crate::consumequeue::{Boundary, CqEntry, SearchError};
use crate::error::StoreError;

use super::Inner;

/// Bytes of a record header that always include STORETIMESTAMP (it sits at 56, or at 68
/// after an IPv6 born host).
const STORE_TIMESTAMP_HEADER_BYTES: u64 = 76;

impl Inner {
    /// See [`crate::store::Store::search_offset_by_timestamp`].
    pub(super) async fn search_offset_by_timestamp(
        &self,
        topic: &str,
        queue_id: i32,
        timestamp_ms: i64,
        boundary: Boundary,
    ) -> Result<i64, StoreError> {
        let Some(slot) = self.queues.existing(topic, queue_id) else {
            return Ok(0);
        };
        let cq = slot.cq.lock().await;
        cq.search_by_timestamp(timestamp_ms, boundary, |entry| async move {
            self.store_timestamp_at(entry).await
        })
        .await
        .map_err(|e| match e {
            SearchError::Queue(source) => slot.error(source),
            SearchError::Lookup(e) => e,
        })
    }

    /// See [`crate::store::Store::earliest_msg_store_time`].
    pub(super) async fn earliest_msg_store_time(
        &self,
        topic: &str,
        queue_id: i32,
    ) -> Result<i64, StoreError> {
        let Some(slot) = self.queues.existing(topic, queue_id) else {
            return Ok(-1);
        };
        self.msg_store_time(topic, queue_id, slot.min_offset.get())
            .await
    }

    /// See [`crate::store::Store::msg_store_time`].
    pub(super) async fn msg_store_time(
        &self,
        topic: &str,
        queue_id: i32,
        offset: i64,
    ) -> Result<i64, StoreError> {
        let Some(slot) = self.queues.existing(topic, queue_id) else {
            return Ok(-1);
        };
        let read = {
            let cq = slot.cq.lock().await;
            cq.entry_at(offset)
        };
        match read.await.map_err(|e| slot.error(e))? {
            Some(entry) => self.store_timestamp_at(entry).await,
            None => Ok(-1),
        }
    }

    /// STORETIMESTAMP of the record an entry points to (read from its fixed header).
    async fn store_timestamp_at(&self, entry: CqEntry) -> Result<i64, StoreError> {
        let physical_offset = entry.physical_offset;
        let len = u64::try_from(entry.size)
            .unwrap_or(0)
            .min(STORE_TIMESTAMP_HEADER_BYTES);
        let (segment, pos) = self
            .log
            .locate(physical_offset, len, self.dispatched_end.get())?;
        let head = segment
            .read_exact_at(pos, len as usize)
            .await
            .map_err(StoreError::io("read segment", segment.path()))?;
        store_timestamp_of(&head).ok_or(StoreError::Corrupt {
            physical_offset,
            source: ringmq_protocol::message::RecordError::Truncated {
                needed: STORE_TIMESTAMP_HEADER_BYTES as usize,
                available: head.len(),
            },
        })
    }
}

/// STORETIMESTAMP from a record's first bytes. Pure.
fn store_timestamp_of(head: &[u8]) -> Option<i64> {
    let sys_flag = i32::from_be_bytes(head.get(36..40)?.try_into().ok()?);
    let pos = if sysflag::born_host_is_v6(sys_flag) {
        68
    } else {
        56
    };
    Some(i64::from_be_bytes(head.get(pos..pos + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_timestamp_is_read_at_the_position_the_born_host_implies() {
        let mut head = vec![0u8; 80];
        head[56..64].copy_from_slice(&42_i64.to_be_bytes());
        assert_eq!(store_timestamp_of(&head), Some(42));
        head[36..40].copy_from_slice(&sysflag::BORNHOST_V6_FLAG.to_be_bytes());
        head[68..76].copy_from_slice(&7_i64.to_be_bytes());
        assert_eq!(store_timestamp_of(&head), Some(7));
        assert_eq!(store_timestamp_of(&head[..60]), None);
    }
}
