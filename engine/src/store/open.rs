//! Opening a shard's store: validate the configuration, take the log's lock, recover the
//! CommitLog and the ConsumeQueues, then start the writer and flusher tasks.
//!
//! Owns the order of recovery (the scan itself is [`crate::recovery`]'s): adopt the queues
//! found on disk, re-dispatch every record the scan finds past the checkpoint, cut the log
//! at the first invalid record, truncate queues that point past that cut, move every
//! queue's min offset past the log's first segment (a log whose oldest segments retention
//! deleted, maybe killed before it trimmed the queues), fdatasync the queues and only then
//! write the new checkpoint. Invariant on success: the log's appended,
//! written and durable ends, its dispatched end and the checkpoint are all the recovered
//! end, and every queue's `min_offset ≤ max_offset = next_offset`.
//!
//! **Crash.** Open writes only repairs (cuts, truncations, re-dispatched entries) that a
//! second open would make again, and moves the checkpoint only after the queues are
//! durable, so a crash at any point during open leaves a store the next open recovers the
//! same way.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;

use futures_util::lock::Mutex;

use crate::commitlog::flush::{read_checkpoint, write_checkpoint};
use crate::commitlog::{CommitLog, LogLock};
use crate::disk_guard::DiskGuard;
use crate::error::{ErrorChain, StoreError};
use crate::page_cache::Estimator;
use crate::queues::{Placement, QueueTable};
use crate::recovery::LogScanner;
use crate::signal::{GroupProgress, Notify};

use super::{Inner, StoreConfig};

impl Inner {
    /// Opens, recovers and starts shard `shard_id`'s store under `root` (see
    /// [`crate::store::Store::open_with_placement`]).
    pub(super) async fn open(
        root: &Path,
        shard_id: u8,
        config: StoreConfig,
        owns_queue: Placement,
    ) -> Result<Rc<Inner>, StoreError> {
        config.validate(shard_id)?;
        let root = root.to_path_buf();
        let log_dir = CommitLog::dir_for(&root, shard_id);
        crate::dirs::create_dir_all_durable(&log_dir)
            .await
            .map_err(StoreError::io("create directory", &log_dir))?;
        let lock = LogLock::acquire(&log_dir)?;
        let checkpoint = read_checkpoint(&log_dir).await?;
        let mut scanner = LogScanner::open(
            &log_dir,
            shard_id,
            config.segment_size_bytes,
            checkpoint,
            config.check_crc_on_recover,
        )
        .await?;
        let total_ram_bytes = match config.total_ram_bytes {
            Some(bytes) => bytes,
            None => crate::page_cache::total_ram_bytes()
                .map_err(StoreError::io("read RAM size", "/proc/meminfo"))?,
        };
        let estimator = Estimator::new(total_ram_bytes, config.page_cache_ratio_percent)
            .with_kernel_probe(config.ask_kernel_page_cache);
        let disk_guard = DiskGuard::new(root.clone(), config.disk_guard);
        let queues = QueueTable::new(
            root.clone(),
            shard_id,
            config.cq_entries_per_file,
            owns_queue,
        );
        queues.open_existing().await?;
        let mut redispatched = 0u64;
        while let Some(batch) = scanner.next_batch().await? {
            for record in &batch {
                redispatched += u64::from(queues.redispatch(record).await?);
            }
        }
        let recovered = scanner.finish().await?;
        let end = recovered.end;
        queues.truncate_at(end).await?;
        let log_min = recovered.segments.keys().next().copied().unwrap_or(0);
        super::retention::trim_queues_to_log_min(&queues, shard_id, log_min).await?;
        tracing::info!(
            shard = shard_id,
            scan_start = recovered.scan_start,
            end,
            redispatched,
            stop = ?recovered.stop,
            "commit log recovered"
        );
        for slot in queues.all() {
            assert!(
                slot.offsets_in_order() && slot.max_offset.get() == slot.next_offset.get(),
                "recovered queue {}:{} has offsets out of order",
                slot.topic,
                slot.queue_id
            );
        }
        // On a full disk the repairs above may not be writable: the store still opens, to
        // serve reads; the queues stay dirty (the flusher writes them once space returns)
        // and the checkpoint stays where it was (recovery then scans from further back).
        let mut checkpointed = end;
        let mut queues_dirty = false;
        let durable = match queues.sync_all().await {
            Ok(()) => write_checkpoint(&log_dir, end).await,
            Err(error) => {
                queues_dirty = true;
                Err(error)
            }
        };
        if let Err(error) = durable {
            if !error.is_out_of_space() {
                return Err(error);
            }
            tracing::warn!(error = %ErrorChain(&error), shard = shard_id, "the disk is full: opened without moving the checkpoint; sends are refused until space is freed, reads are served");
            checkpointed = checkpoint.unwrap_or(0).min(end);
            if checkpoint.is_some_and(|c| c > end) {
                // A checkpoint past the cut log would make the next recovery start beyond
                // its end; without one it scans the last segments.
                let path = crate::commitlog::flush::checkpoint_path(&log_dir);
                compio::fs::remove_file(&path)
                    .await
                    .map_err(StoreError::io("remove checkpoint", &path))?;
            }
        }
        let log = CommitLog::from_recovered(
            shard_id,
            log_dir,
            config.segment_size_bytes,
            recovered.segments,
            end,
        );
        let inner = Inner {
            lock: RefCell::new(Some(lock)),
            root,
            shard_id,
            config,
            log,
            queues,
            pending_dispatch: RefCell::new(Vec::new()),
            writer_wake: Notify::default(),
            flusher_wake: Notify::default(),
            retention_wake: Notify::default(),
            retention_lock: Mutex::new(()),
            progress: GroupProgress::default(),
            dispatched_end: Cell::new(end),
            checkpointed: Cell::new(checkpointed),
            checkpoint_lock: Mutex::new(()),
            dirty_slots: RefCell::new(Vec::new()),
            arrivals: RefCell::new(Vec::new()),
            listener: RefCell::new(None),
            disk_guard: RefCell::new(disk_guard),
            write_stalled: RefCell::new(None),
            preallocation_failures: Cell::new(0),
            estimator,
            closing: Cell::new(false),
            tasks: RefCell::new(Vec::new()),
        };
        if queues_dirty {
            for slot in inner.queues.all() {
                if !slot.dirty.replace(true) {
                    inner.dirty_slots.borrow_mut().push(slot);
                }
            }
        }
        inner.update_store_bytes();
        inner.debug_assert_log_ends();

        let inner = Rc::new(inner);
        let writer = compio::runtime::spawn(Rc::clone(&inner).writer_loop());
        let flusher = compio::runtime::spawn(Rc::clone(&inner).flusher_loop());
        inner.tasks.borrow_mut().extend([writer, flusher]);
        if let Some(retention) = inner.config.retention {
            let task = compio::runtime::spawn(Rc::clone(&inner).retention_loop(retention));
            inner.tasks.borrow_mut().push(task);
        }
        Ok(inner)
    }
}
