//! Pieces both consumers share: subscriptions (tag expressions → `SubscriptionData`), where a
//! queue starts (the stored offset, else `consumeFromWhere`, §6.3), the offset stores (broker-side
//! for clustering, a local file for broadcasting, §6.2), the in-flight offset bookkeeping of a
//! queue, and the rebalance computation (§7.1).
//!
//! Offset invariant: the offset committed for a queue is the lowest offset still in flight
//! (pulled, not yet consumed), or one past the highest offset seen when nothing is in flight.
//! Committed offsets only move forward unless the caller explicitly seeks or resets.
//!
//! Local offset file: written to `<file>.tmp`, fsynced, the old file renamed to `<file>.bak`,
//! then the temp renamed over the file. A crash leaves either the old file, the new one, or
//! only `.bak` (which the loader falls back to).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ringmq_protocol::body::{
    JsonBody, MessageModel, MessageQueue, OffsetSerializeWrapper, SubscriptionData,
};
use ringmq_protocol::message::java_string_hash;

use crate::allocate::AllocateStrategy;
use crate::api;
use crate::core::{now_ms, ClientCore};
use crate::error::{ClientError, Result};

pub use crate::message::RETRY_GROUP_TOPIC_PREFIX;

/// The retry topic of `group`.
pub fn retry_topic(group: &str) -> String {
    format!("{RETRY_GROUP_TOPIC_PREFIX}{group}")
}

/// Where to start reading a queue the group has no stored offset for (§6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsumeFrom {
    /// The tail: only messages stored from now on (Java default).
    #[default]
    LastOffset,
    /// The head: everything still stored.
    FirstOffset,
    /// The first message stored at or after this time (ms since the epoch).
    Timestamp(i64),
}

impl ConsumeFrom {
    /// The Java enum for heartbeats.
    pub fn java(self) -> ringmq_protocol::body::ConsumeFromWhere {
        use ringmq_protocol::body::ConsumeFromWhere as W;
        match self {
            ConsumeFrom::LastOffset => W::ConsumeFromLastOffset,
            ConsumeFrom::FirstOffset => W::ConsumeFromFirstOffset,
            ConsumeFrom::Timestamp(_) => W::ConsumeFromTimestamp,
        }
    }
}

/// A parsed tag subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Topic.
    pub topic: String,
    /// Expression as given (`*` or `TagA || TagB`).
    pub expression: String,
    /// Trimmed tags; empty means every message.
    pub tags: Vec<String>,
    /// Version (ms time of creation).
    pub version: i64,
}

impl Subscription {
    /// Parses `expression`: `*`, empty, or tags separated by `||`.
    pub fn new(topic: &str, expression: &str) -> Self {
        let expression = expression.trim();
        let tags: Vec<String> = if expression.is_empty() || expression == "*" {
            Vec::new()
        } else {
            expression
                .split("||")
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        };
        Subscription {
            topic: topic.to_owned(),
            expression: if tags.is_empty() {
                "*".to_owned()
            } else {
                expression.to_owned()
            },
            tags,
            version: now_ms(),
        }
    }

    /// The heartbeat form (`SubscriptionData`).
    pub fn data(&self) -> SubscriptionData {
        SubscriptionData {
            class_filter_mode: false,
            topic: self.topic.clone(),
            sub_string: self.expression.clone(),
            tags_set: self.tags.clone(),
            code_set: self.tags.iter().map(|t| java_string_hash(t)).collect(),
            sub_version: self.version,
            expression_type: "TAG".to_owned(),
        }
    }
}

/// The offset to start `mq` at when the broker has none (§6.3).
pub async fn start_offset_without_stored(
    core: &ClientCore,
    mq: &MessageQueue,
    from: ConsumeFrom,
) -> Result<i64> {
    let is_retry = mq.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX);
    match from {
        ConsumeFrom::LastOffset if is_retry => Ok(0),
        ConsumeFrom::LastOffset => api::max_offset(core, mq).await,
        ConsumeFrom::FirstOffset => Ok(0),
        ConsumeFrom::Timestamp(_) if is_retry => api::max_offset(core, mq).await,
        ConsumeFrom::Timestamp(ts) => api::search_offset(core, mq, ts).await,
    }
}

/// In-flight bookkeeping of one queue: which pulled offsets are not yet consumed.
#[derive(Debug, Default, Clone)]
pub struct InFlight {
    /// Offset → body bytes, of messages pulled and not yet consumed.
    msgs: BTreeMap<i64, usize>,
    /// Bytes of `msgs`.
    bytes: usize,
    /// Highest offset ever added.
    max_seen: Option<i64>,
}

impl InFlight {
    /// Records pulled messages (offset, body size). Offsets already present are ignored.
    pub fn add(&mut self, msgs: impl IntoIterator<Item = (i64, usize)>) {
        for (offset, size) in msgs {
            if self.msgs.insert(offset, size).is_none() {
                self.bytes += size;
            }
            self.max_seen = Some(self.max_seen.map_or(offset, |m| m.max(offset)));
        }
    }

    /// Marks messages consumed; returns the offset to commit afterwards ([`Self::commit_offset`]).
    pub fn remove(&mut self, offsets: impl IntoIterator<Item = i64>) -> Option<i64> {
        for offset in offsets {
            if let Some(size) = self.msgs.remove(&offset) {
                self.bytes -= size;
            }
        }
        self.commit_offset()
    }

    /// The lowest offset in flight, or one past the highest seen when none is; `None` before
    /// anything was added.
    pub fn commit_offset(&self) -> Option<i64> {
        match self.msgs.keys().next() {
            Some(lowest) => Some(*lowest),
            None => self.max_seen.map(|m| m + 1),
        }
    }

    /// Messages in flight.
    pub fn count(&self) -> usize {
        self.msgs.len()
    }

    /// Body bytes in flight.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Distance between the lowest and highest offset in flight (Java's max span).
    pub fn span(&self) -> i64 {
        match (self.msgs.keys().next(), self.msgs.keys().next_back()) {
            (Some(lo), Some(hi)) => hi - lo,
            _ => 0,
        }
    }
}

/// The offsets a consumer keeps: in memory, persisted to the broker (clustering) or to a local
/// file (broadcasting).
#[derive(Debug)]
pub struct OffsetStore {
    group: String,
    table: Mutex<HashMap<MessageQueue, i64>>,
    file: Option<PathBuf>,
}

impl OffsetStore {
    /// A broker-backed store for `group`.
    pub fn remote(group: &str) -> Self {
        OffsetStore {
            group: group.to_owned(),
            table: Mutex::new(HashMap::new()),
            file: None,
        }
    }

    /// A file-backed store at `file`, loaded now (falling back to `<file>.bak`).
    pub fn local(group: &str, file: PathBuf) -> Result<Self> {
        let table = load_offset_file(&file)?;
        Ok(OffsetStore {
            group: group.to_owned(),
            table: Mutex::new(table),
            file: Some(file),
        })
    }

    /// The default local file of Java's LocalFileOffsetStore:
    /// `<base>/<clientId>/<group>/offsets.json`, base `$HOME/.rocketmq_offsets`.
    pub fn default_local_path(base: Option<&Path>, client_id: &str, group: &str) -> PathBuf {
        let base = base.map(Path::to_path_buf).unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir)
                .join(".rocketmq_offsets")
        });
        // ':' and '@' are fine on Linux; keep the Java layout.
        base.join(client_id).join(group).join("offsets.json")
    }

    /// The store a consumer of `group` uses in `model`: the broker's for clustering, a local
    /// file (under `offset_store_dir`, else `~/.rocketmq_offsets`) for broadcasting.
    pub fn for_model(
        model: MessageModel,
        group: &str,
        offset_store_dir: Option<&Path>,
        client_id: &str,
    ) -> Result<Self> {
        match model {
            MessageModel::Clustering => Ok(OffsetStore::remote(group)),
            MessageModel::Broadcasting => OffsetStore::local(
                group,
                OffsetStore::default_local_path(offset_store_dir, client_id, group),
            ),
        }
    }

    /// Is this the broadcasting (file) store?
    pub fn is_local(&self) -> bool {
        self.file.is_some()
    }

    /// Sets the offset of `mq`; with `increase_only`, never moves it backwards.
    pub fn update(&self, mq: &MessageQueue, offset: i64, increase_only: bool) {
        if let Ok(mut table) = self.table.lock() {
            let entry = table.entry(mq.clone()).or_insert(offset);
            if !increase_only || offset > *entry {
                *entry = offset;
            }
        }
    }

    /// The offset in memory for `mq`.
    pub fn get(&self, mq: &MessageQueue) -> Option<i64> {
        self.table.lock().ok()?.get(mq).copied()
    }

    /// Forgets `mq` (after its queue was removed and its offset persisted).
    pub fn remove(&self, mq: &MessageQueue) {
        if let Ok(mut table) = self.table.lock() {
            table.remove(mq);
        }
    }

    /// The stored offset of `mq`: from the file table (broadcast) or the broker (clustering);
    /// `None` when there is none.
    pub async fn read_stored(&self, core: &ClientCore, mq: &MessageQueue) -> Result<Option<i64>> {
        if self.is_local() {
            return Ok(self.get(mq));
        }
        let stored = api::query_consumer_offset(core, &self.group, mq).await?;
        if let Some(offset) = stored {
            self.update(mq, offset, false);
        }
        Ok(stored)
    }

    /// Persists one queue's offset (awaited for the broker).
    pub async fn persist(&self, core: &ClientCore, mq: &MessageQueue, oneway: bool) -> Result<()> {
        let Some(offset) = self.get(mq) else {
            return Ok(());
        };
        if self.is_local() {
            return self.persist_file();
        }
        api::update_consumer_offset(core, &self.group, mq, offset, oneway).await
    }

    /// Persists every offset of `queues` (all of them when `None`).
    pub async fn persist_all(
        &self,
        core: &ClientCore,
        queues: Option<&[MessageQueue]>,
        oneway: bool,
    ) {
        if self.is_local() {
            if let Err(e) = self.persist_file() {
                tracing::warn!(error = %e, "cannot write the local offset file");
            }
            return;
        }
        let snapshot: Vec<(MessageQueue, i64)> = match self.table.lock() {
            Ok(table) => table
                .iter()
                .filter(|(mq, _)| queues.is_none_or(|qs| qs.contains(mq)))
                .map(|(mq, o)| (mq.clone(), *o))
                .collect(),
            Err(_) => return,
        };
        for (mq, offset) in snapshot {
            if let Err(e) =
                api::update_consumer_offset(core, &self.group, &mq, offset, oneway).await
            {
                tracing::debug!(queue = ?mq, error = %e, "offset persist failed");
            }
        }
    }

    fn persist_file(&self) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let wrapper = OffsetSerializeWrapper {
            offset_table: match self.table.lock() {
                Ok(table) => table.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                Err(_) => return Ok(()),
            },
        };
        write_offset_file(file, &wrapper.encode()?)
    }
}

fn file_error<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> ClientError + 'a {
    move |source| ClientError::File {
        what,
        path: path.display().to_string(),
        source,
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes the offset file atomically (see the module doc).
pub fn write_offset_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(file_error("cannot create directory for", path))?;
    }
    let tmp = with_suffix(path, ".tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(file_error("cannot create", &tmp))?;
        f.write_all(bytes)
            .map_err(file_error("cannot write", &tmp))?;
        f.sync_all().map_err(file_error("cannot fsync", &tmp))?;
    }
    if path.exists() {
        let bak = with_suffix(path, ".bak");
        std::fs::rename(path, &bak).map_err(file_error("cannot back up", path))?;
    }
    std::fs::rename(&tmp, path).map_err(file_error("cannot rename into", path))?;
    Ok(())
}

/// Loads the offset file, falling back to `.bak`; a missing file is an empty table.
pub fn load_offset_file(path: &Path) -> Result<HashMap<MessageQueue, i64>> {
    for candidate in [path.to_path_buf(), with_suffix(path, ".bak")] {
        match std::fs::read(&candidate) {
            Ok(bytes) => match OffsetSerializeWrapper::decode(&bytes) {
                Ok(w) => return Ok(w.offset_table.into_iter().collect()),
                Err(e) => {
                    tracing::warn!(file = %candidate.display(), error = %e, "broken offset file");
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(file_error("cannot read", &candidate)(e)),
        }
    }
    Ok(HashMap::new())
}

/// The queues of `topic` this client should own now. `None` means "skip this topic this
/// round" (no route, or no member list), as Java does.
pub async fn compute_assignment(
    core: &Arc<ClientCore>,
    group: &str,
    topic: &str,
    model: MessageModel,
    strategy: AllocateStrategy,
) -> Option<Vec<MessageQueue>> {
    let route = match core.routes.get(topic).await {
        Ok(route) => route,
        Err(e) => {
            tracing::debug!(%topic, error = %e, "rebalance: no route");
            return None;
        }
    };
    let mq_all = route.subscribe.clone();
    if model == MessageModel::Broadcasting {
        return Some(mq_all);
    }
    let cid_all = match api::consumer_id_list(core, group, topic).await {
        Ok(cids) if !cids.is_empty() => cids,
        Ok(_) => return None,
        Err(e) => {
            tracing::debug!(%topic, error = %e, "rebalance: no consumer list");
            return None;
        }
    };
    Some(strategy.allocate(&core.client_id, &mq_all, &cid_all))
}

/// Where reading `mq` starts: the offset `store` holds for it (the broker's for a remote
/// store, the file's for a local one), else the one `from` gives (protocol.md §6.3). Without
/// a store, or when it holds none (or a negative one), `from` alone decides.
pub async fn start_offset(
    core: &ClientCore,
    store: Option<&OffsetStore>,
    mq: &MessageQueue,
    from: ConsumeFrom,
) -> Result<i64> {
    if let Some(store) = store {
        if let Some(offset) = store.read_stored(core, mq).await? {
            if offset >= 0 {
                return Ok(offset);
            }
        }
    }
    start_offset_without_stored(core, mq, from).await
}

/// [`start_offset`] for a newly assigned queue of a consumer. `None` when a lookup fails: the
/// queue is skipped this round and the next rebalance tries again (as the Java client does
/// with its -2 offset).
pub(crate) async fn start_offset_for(
    core: &ClientCore,
    store: &OffsetStore,
    mq: &MessageQueue,
    from: ConsumeFrom,
) -> Option<i64> {
    match start_offset(core, Some(store), mq, from).await {
        Ok(offset) => Some(offset),
        Err(e) => {
            tracing::debug!(queue = ?mq, error = %e, "cannot find the start offset; skipping this round");
            None
        }
    }
}

/// Routes NOTIFY_CONSUMER_IDS_CHANGED for `group` (or without a group) to `wakeup` of the
/// consumer behind `consumer`, so it rebalances at once (protocol.md §2.9). The handler holds
/// the consumer weakly: a dropped consumer is not kept alive by its connection.
pub(crate) fn rebalance_on_notify<T: Send + Sync + 'static>(
    core: &ClientCore,
    group: String,
    consumer: std::sync::Weak<T>,
    wakeup: fn(&T) -> &tokio::sync::Notify,
) {
    core.remoting
        .set_inbound_handler(Arc::new(move |_addr, request| {
            if request.code == ringmq_protocol::codes::request_code::NOTIFY_CONSUMER_IDS_CHANGED
                && request.ext("consumerGroup").is_none_or(|g| g == group)
            {
                if let Some(consumer) = consumer.upgrade() {
                    wakeup(&consumer).notify_one();
                }
            }
            None
        }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_offset_is_the_lowest_offset_in_flight() {
        let mut f = InFlight::default();
        f.add([(10, 1), (11, 1), (12, 1)]);
        assert_eq!(f.remove([11]), Some(10));
        assert_eq!(f.remove([10]), Some(12));
        assert_eq!(f.remove([12]), Some(13));
    }

    #[test]
    fn commit_offset_is_none_before_anything_was_pulled() {
        assert_eq!(InFlight::default().commit_offset(), None);
    }

    #[test]
    fn in_flight_counts_and_bytes_follow_adds_and_removes() {
        let mut f = InFlight::default();
        f.add([(1, 100), (2, 50), (2, 50)]);
        assert_eq!((f.count(), f.bytes()), (2, 150));
        f.remove([1, 7]);
        assert_eq!((f.count(), f.bytes()), (1, 50));
        assert_eq!(f.span(), 0);
    }

    #[test]
    fn subscription_splits_and_trims_tags_and_hashes_them() {
        let s = Subscription::new("T", " TagA || TagB ||");
        assert_eq!(s.tags, vec!["TagA", "TagB"]);
        let d = s.data();
        assert_eq!(
            d.code_set,
            vec![java_string_hash("TagA"), java_string_hash("TagB")]
        );
        assert_eq!(Subscription::new("T", "").expression, "*");
        assert!(Subscription::new("T", "*").tags.is_empty());
    }

    #[test]
    fn offset_store_update_can_be_increase_only() {
        let s = OffsetStore::remote("g");
        let mq = MessageQueue::new("T", "b", 0);
        s.update(&mq, 10, true);
        s.update(&mq, 5, true);
        assert_eq!(s.get(&mq), Some(10));
        s.update(&mq, 5, false);
        assert_eq!(s.get(&mq), Some(5));
    }

    #[test]
    fn local_offset_file_round_trips_and_falls_back_to_bak() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cid").join("g").join("offsets.json");
        let store = OffsetStore::local("g", path.clone()).unwrap();
        let mq = MessageQueue::new("T", "broker-a", 3);
        store.update(&mq, 42, true);
        store.persist_file().unwrap();
        store.update(&mq, 43, true);
        store.persist_file().unwrap();
        assert_eq!(load_offset_file(&path).unwrap().get(&mq), Some(&43));
        // A crash between the two renames leaves only the backup.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(load_offset_file(&path).unwrap().get(&mq), Some(&42));
    }

    #[test]
    fn missing_offset_file_is_an_empty_table() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_offset_file(&dir.path().join("none.json"))
            .unwrap()
            .is_empty());
    }
}
