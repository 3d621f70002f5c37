//! Committed consumer offsets: `(group, topic, queueId) → next offset to consume`
//! (protocol.md §2.5, §6.1; design.md §7), in memory and in RocketMQ's
//! `consumerOffset.json` shape.
//!
//! **Owns** the offsets of the queues of one shard (the shard picks the file path). A
//! commit overwrites, lower values included, as RocketMQ does.
//!
//! **File.** `{"offsetTable":{"topic@group":{"0":12}},"dataVersion":{…}}`, written with
//! quoted keys (every fastjson reader accepts them) and read leniently through
//! [`ringmq_protocol::body`], so a file written by a Java broker (`{0:1532}`) loads.
//!
//! **Persisting** ([`ConsumerOffsets::persist`], every 5 s and at shutdown) goes through
//! compio, not `std::fs`: it runs on the shard's own thread, and a blocking fsync there
//! would stall every connection of the shard for as long as the disk takes (milliseconds,
//! more under write load). Steps: write `<file>.tmp` and fsync it; hard-link the current
//! file as `<file>.bak` (via `<file>.bak.tmp` and a rename, so `.bak` is always whole);
//! rename `.tmp` over the file; fsync the directory. **A crash** at any point leaves the
//! file whole (old or new) and the `.bak` whole (older); a leftover `.tmp` is ignored by
//! [`ConsumerOffsets::load`] and overwritten by the next persist. **Loading** happens once
//! at start-up, before the shards serve, so it uses `std::fs`: the file, else the `.bak`
//! when the file is missing or broken (RocketMQ does the same), else an empty table when
//! neither exists; a broken file without a usable `.bak` is an error, not a silent reset of
//! every group to "no offset".

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use compio::buf::BufResult;
use compio::fs::OpenOptions;
use compio::io::AsyncWriteAtExt;
use ringmq_protocol::body::{
    offset_table_key, split_offset_table_key, BodyError, ConsumerOffsetSerializeWrapper,
    DataVersion, JsonBody,
};

use crate::clock::now_ms;

/// What can go wrong saving or loading offsets.
#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    /// A file operation failed.
    #[error("consumer offsets I/O on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Encoding the table failed.
    #[error("cannot encode consumer offsets")]
    Encode(#[source] BodyError),
    /// The file is broken and no usable `.bak` exists.
    #[error("{path} is broken and {bak} is missing or broken too")]
    Corrupt {
        /// The main file.
        path: PathBuf,
        /// The backup that was tried.
        bak: PathBuf,
        /// Why the main file did not decode.
        #[source]
        source: BodyError,
    },
}

/// Consumer offsets of one shard: see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct ConsumerOffsets {
    /// group → topic → queue id → next offset. Nested so lookups need no allocation.
    table: HashMap<String, HashMap<String, BTreeMap<i32, i64>>>,
    data_version: DataVersion,
    dirty: bool,
}

impl ConsumerOffsets {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The committed offset of a queue, `None` if the group never committed one.
    pub fn get(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        self.table.get(group)?.get(topic)?.get(&queue_id).copied()
    }

    /// Records a commit (UPDATE_CONSUMER_OFFSET, or a PULL with the commit flag). Lower
    /// values overwrite too.
    pub fn commit(&mut self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        let topics = match self.table.get_mut(group) {
            Some(topics) => topics,
            None => self.table.entry(group.to_owned()).or_default(),
        };
        let queues = match topics.get_mut(topic) {
            Some(queues) => queues,
            None => topics.entry(topic.to_owned()).or_default(),
        };
        if queues.insert(queue_id, offset) != Some(offset) {
            self.dirty = true;
        }
    }

    /// The committed offsets of a group on a topic, by queue id.
    pub fn queues(&self, group: &str, topic: &str) -> Option<&BTreeMap<i32, i64>> {
        self.table.get(group)?.get(topic)
    }

    /// Forgets every group's offsets on `topic` (the topic was deleted); returns whether any
    /// existed.
    pub fn remove_topic(&mut self, topic: &str) -> bool {
        let mut removed = false;
        for topics in self.table.values_mut() {
            removed |= topics.remove(topic).is_some();
        }
        self.table.retain(|_, topics| !topics.is_empty());
        self.dirty |= removed;
        removed
    }

    /// Forgets everything of a group (group deleted). Returns whether it had offsets.
    pub fn remove_group(&mut self, group: &str) -> bool {
        let removed = self.table.remove(group).is_some();
        self.dirty |= removed;
        removed
    }

    /// Number of (group, topic, queue) offsets held.
    pub fn len(&self) -> usize {
        self.table
            .values()
            .flat_map(HashMap::values)
            .map(BTreeMap::len)
            .sum()
    }

    /// Whether no offset is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether something changed since the last persist or load.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The table's version (bumped by each persist of a change).
    pub fn data_version(&self) -> DataVersion {
        self.data_version
    }

    /// The wire/file form (GET_ALL_CONSUMER_OFFSET body for a slave, and the file).
    pub fn to_wrapper(&self) -> ConsumerOffsetSerializeWrapper {
        let mut offset_table = BTreeMap::new();
        for (group, topics) in &self.table {
            for (topic, queues) in topics {
                offset_table.insert(offset_table_key(topic, group), queues.clone());
            }
        }
        ConsumerOffsetSerializeWrapper {
            offset_table,
            data_version: Some(self.data_version),
        }
    }

    /// Builds the table from the wire/file form (a slave syncing from its master, or a
    /// load). Keys without `@` cannot name a group and are skipped with a warning.
    pub fn from_wrapper(wrapper: ConsumerOffsetSerializeWrapper) -> Self {
        let mut offsets = Self::new();
        for (key, queues) in wrapper.offset_table {
            let Some((topic, group)) = split_offset_table_key(&key) else {
                tracing::warn!(key, "consumer offset key without '@' skipped");
                continue;
            };
            offsets
                .table
                .entry(group.to_owned())
                .or_default()
                .insert(topic.to_owned(), queues);
        }
        offsets.data_version = wrapper.data_version.unwrap_or_default();
        offsets
    }

    /// Writes the table to `path` crash-safely (module documentation) and clears the dirty
    /// flag. Bumps the data version first when something changed.
    pub async fn persist(&mut self, path: &Path) -> Result<(), OffsetsError> {
        if self.dirty {
            self.data_version.next_version(now_ms());
        }
        let bytes = self
            .to_wrapper()
            .encode_pretty()
            .map_err(OffsetsError::Encode)?;
        let tmp = sibling(path, ".tmp");
        write_synced(&tmp, bytes).await?;
        if path.exists() {
            let bak_tmp = sibling(path, ".bak.tmp");
            match compio::fs::remove_file(&bak_tmp).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_error(&bak_tmp)(e)),
                _ => {}
            }
            compio::fs::hard_link(path, &bak_tmp)
                .await
                .map_err(io_error(&bak_tmp))?;
            let bak = sibling(path, ".bak");
            compio::fs::rename(&bak_tmp, &bak)
                .await
                .map_err(io_error(&bak))?;
        }
        compio::fs::rename(&tmp, path)
            .await
            .map_err(io_error(path))?;
        sync_parent_dir(path).await?;
        self.dirty = false;
        Ok(())
    }

    /// Loads `path`, falling back to `<path>.bak` (module documentation). Missing both:
    /// an empty table.
    pub fn load(path: &Path) -> Result<Self, OffsetsError> {
        let bak = sibling(path, ".bak");
        let main_error = match read_wrapper(path)? {
            Some(Ok(wrapper)) => return Ok(Self::from_wrapper(wrapper)),
            Some(Err(error)) => Some(error),
            None => None,
        };
        match (read_wrapper(&bak)?, main_error) {
            (Some(Ok(wrapper)), error) => {
                tracing::warn!(path = %path.display(), broken = error.is_some(), "consumer offsets loaded from the .bak");
                Ok(Self::from_wrapper(wrapper))
            }
            (_, Some(source)) => Err(OffsetsError::Corrupt {
                path: path.to_path_buf(),
                bak,
                source,
            }),
            (Some(Err(bak_error)), None) => Err(OffsetsError::Corrupt {
                path: path.to_path_buf(),
                bak,
                source: bak_error,
            }),
            (None, None) => Ok(Self::new()),
        }
    }
}

/// `Ok(None)` when the file does not exist; `Ok(Some(Err))` when it does not decode.
fn read_wrapper(
    path: &Path,
) -> Result<Option<Result<ConsumerOffsetSerializeWrapper, BodyError>>, OffsetsError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(ConsumerOffsetSerializeWrapper::decode(&bytes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path)(e)),
    }
}

async fn write_synced(path: &Path, bytes: Vec<u8>) -> Result<(), OffsetsError> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .await
        .map_err(io_error(path))?;
    let mut writer = &file;
    let BufResult(result, _) = writer.write_all_at(bytes, 0).await;
    result.map_err(io_error(path))?;
    file.sync_all().await.map_err(io_error(path))?;
    file.close().await.map_err(io_error(path))
}

async fn sync_parent_dir(path: &Path) -> Result<(), OffsetsError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let handle = OpenOptions::new()
        .read(true)
        .open(dir)
        .await
        .map_err(io_error(dir))?;
    handle.sync_all().await.map_err(io_error(dir))
}

/// `path` with `suffix` appended to its file name (`a.json` → `a.json.bak`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> OffsetsError + '_ {
    move |source| OffsetsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_then_get_returns_the_offset() {
        let mut offsets = ConsumerOffsets::new();
        offsets.commit("cg1", "TopicTest", 2, 17);
        assert_eq!(offsets.get("cg1", "TopicTest", 2), Some(17));
        assert_eq!(offsets.get("cg1", "TopicTest", 3), None);
        assert_eq!(offsets.get("cg2", "TopicTest", 2), None);
    }

    #[test]
    fn a_lower_commit_overwrites() {
        let mut offsets = ConsumerOffsets::new();
        offsets.commit("cg1", "T", 0, 50);
        offsets.commit("cg1", "T", 0, 10);
        assert_eq!(offsets.get("cg1", "T", 0), Some(10));
    }

    #[test]
    fn only_a_change_makes_the_table_dirty() {
        let mut offsets = ConsumerOffsets::new();
        assert!(!offsets.is_dirty());
        offsets.commit("cg1", "T", 0, 5);
        assert!(offsets.is_dirty());
        offsets.dirty = false;
        offsets.commit("cg1", "T", 0, 5);
        assert!(!offsets.is_dirty(), "same value again changes nothing");
    }

    #[test]
    fn the_wrapper_keys_are_topic_at_group() {
        let mut offsets = ConsumerOffsets::new();
        offsets.commit("cg1", "%RETRY%cg1", 0, 3);
        let wrapper = offsets.to_wrapper();
        assert_eq!(
            wrapper
                .offset_table
                .get("%RETRY%cg1@cg1")
                .and_then(|q| q.get(&0)),
            Some(&3)
        );
        let back = ConsumerOffsets::from_wrapper(wrapper);
        assert_eq!(back.get("cg1", "%RETRY%cg1", 0), Some(3));
    }

    #[test]
    fn a_key_without_at_is_skipped() {
        let mut wrapper = ConsumerOffsetSerializeWrapper::default();
        wrapper
            .offset_table
            .insert("nogroup".into(), BTreeMap::from([(0, 1)]));
        assert!(ConsumerOffsets::from_wrapper(wrapper).is_empty());
    }

    #[test]
    fn sibling_appends_to_the_file_name() {
        assert_eq!(
            sibling(Path::new("/a/b.json"), ".bak"),
            PathBuf::from("/a/b.json.bak")
        );
    }
}
