//! Consumer-group configs (RocketMQ's subscription groups): `config/subscriptionGroup.json`,
//! served whole by GET_ALL_SUBSCRIPTIONGROUP_CONFIG (a slave copies it, mqadmin exports it),
//! changed by UPDATE_AND_CREATE_SUBSCRIPTIONGROUP and DELETE_SUBSCRIPTIONGROUP, and created
//! with RocketMQ's defaults for every group a heartbeat names (RocketMQ's
//! `autoCreateSubscriptionGroup`, on by default).
//!
//! What ringmq acts on: `consumeEnable` (a group with it off is refused pulls, as RocketMQ
//! does). The other fields are kept and served as written.
//!
//! Readers take the current snapshot (an `Arc`, no lock held while they use it). Every
//! change is published and then written whole with [`crate::durable_file::replace`] before
//! the next change starts; writes block, so changes run off the ring threads (the offload
//! thread). A crash leaves the old or the new file; a group auto-created just before a
//! crash is created again by its next heartbeat.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use ringmq_protocol::body::{
    BodyError, JsonBody, SubscriptionGroupConfig, SubscriptionGroupWrapper,
};

use crate::durable_file::FileError;
use crate::topics::{validate_group_name, NameError};

/// File name under the store's `config` directory, as RocketMQ names it.
pub const FILE_NAME: &str = "subscriptionGroup.json";

/// Why a change or the load failed.
#[derive(Debug, thiserror::Error)]
pub enum GroupConfigError {
    /// Reading or writing the file failed.
    #[error("subscription groups file: {0}")]
    File(#[from] FileError),
    /// The file exists but does not decode.
    #[error("{} does not decode (move it away to start with no group configs)", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: BodyError,
    },
    /// Encoding the table failed.
    #[error("encoding the subscription groups")]
    Encode(#[source] BodyError),
    /// The group name is not a valid RocketMQ group name.
    #[error("the subscription group name is invalid: {0}")]
    InvalidName(#[from] NameError),
}

/// The table (module documentation).
#[derive(Debug)]
pub struct SubscriptionGroups {
    current: RwLock<Arc<SubscriptionGroupWrapper>>,
    /// Held by a change from its publication to the end of its write.
    writer: Mutex<()>,
    /// `None`: memory only (tests).
    path: Option<PathBuf>,
}

impl SubscriptionGroups {
    /// Loads `<config_dir>/subscriptionGroup.json` if it exists (RocketMQ's file loads too);
    /// with no directory, the table lives in memory only.
    pub fn open(config_dir: Option<&Path>) -> Result<Self, GroupConfigError> {
        let path = config_dir.map(|dir| dir.join(FILE_NAME));
        let table = match &path {
            Some(path) => load(path)?,
            None => SubscriptionGroupWrapper::default(),
        };
        Ok(SubscriptionGroups {
            current: RwLock::new(Arc::new(table)),
            writer: Mutex::new(()),
            path,
        })
    }

    /// A table in memory only, empty.
    pub fn in_memory() -> Self {
        SubscriptionGroups {
            current: RwLock::new(Arc::new(SubscriptionGroupWrapper::default())),
            writer: Mutex::new(()),
            path: None,
        }
    }

    /// The current table.
    pub fn snapshot(&self) -> Arc<SubscriptionGroupWrapper> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// A group's config, if it has one.
    pub fn get(&self, group: &str) -> Option<SubscriptionGroupConfig> {
        self.snapshot().subscription_group_table.get(group).cloned()
    }

    /// Whether `group` may consume: false only for a group whose config switched
    /// `consumeEnable` off. Called per pull: reads the snapshot, copies nothing.
    pub fn consume_enabled(&self, group: &str) -> bool {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current
            .subscription_group_table
            .get(group)
            .is_none_or(|config| config.consume_enable)
    }

    /// Creates, with RocketMQ's defaults, the groups of `groups` that have no config; one
    /// write for all of them. Blocking. Returns how many were created.
    pub fn ensure_blocking<'a>(
        &self,
        groups: impl IntoIterator<Item = &'a str>,
    ) -> Result<usize, GroupConfigError> {
        let current = self.snapshot();
        let missing: Vec<&str> = groups
            .into_iter()
            .filter(|g| {
                !current.subscription_group_table.contains_key(*g) && validate_group_name(g).is_ok()
            })
            .collect();
        if missing.is_empty() {
            return Ok(0);
        }
        self.change(|table| {
            let mut created = 0;
            for group in &missing {
                if !table.subscription_group_table.contains_key(*group) {
                    table
                        .subscription_group_table
                        .insert((*group).to_owned(), SubscriptionGroupConfig::new(*group));
                    created += 1;
                }
            }
            created
        })
    }

    /// Creates or replaces a group's config (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP). Blocking.
    pub fn upsert_blocking(&self, config: SubscriptionGroupConfig) -> Result<(), GroupConfigError> {
        validate_group_name(&config.group_name)?;
        self.change(|table| {
            table
                .subscription_group_table
                .insert(config.group_name.clone(), config);
        })
    }

    /// Removes a group's config (DELETE_SUBSCRIPTIONGROUP); whether it had one. Blocking.
    pub fn delete_blocking(&self, group: &str) -> Result<bool, GroupConfigError> {
        if !self.snapshot().subscription_group_table.contains_key(group) {
            return Ok(false);
        }
        self.change(|table| {
            table.forbidden_table.remove(group);
            table.subscription_group_table.remove(group).is_some()
        })
    }

    /// Slave: takes the master's table as it is when its version differs from the one this
    /// broker holds. Blocking. Returns whether anything changed.
    pub fn adopt_master_blocking(
        &self,
        master: &SubscriptionGroupWrapper,
    ) -> Result<bool, GroupConfigError> {
        let current = self.snapshot();
        if current.subscription_group_table == master.subscription_group_table
            && current.forbidden_table == master.forbidden_table
        {
            return Ok(false);
        }
        self.change(|table| {
            table.subscription_group_table = master.subscription_group_table.clone();
            table.forbidden_table = master.forbidden_table.clone();
        })?;
        tracing::info!(
            groups = master.subscription_group_table.len(),
            "subscription groups copied from the master"
        );
        Ok(true)
    }

    /// Applies `edit` to a copy of the table, publishes it with a new version and writes it.
    fn change<T>(
        &self,
        edit: impl FnOnce(&mut SubscriptionGroupWrapper) -> T,
    ) -> Result<T, GroupConfigError> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = SubscriptionGroupWrapper::clone(&self.snapshot());
        let result = edit(&mut next);
        next.data_version.next_version(crate::clock::wall_ms());
        let next = Arc::new(next);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&next);
        if let Some(path) = &self.path {
            let bytes = next.encode().map_err(GroupConfigError::Encode)?;
            crate::durable_file::replace(path, &bytes)?;
        }
        Ok(result)
    }
}

fn load(path: &Path) -> Result<SubscriptionGroupWrapper, GroupConfigError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(SubscriptionGroupWrapper::default())
        }
        Err(source) => {
            return Err(GroupConfigError::File(FileError {
                path: path.to_path_buf(),
                source,
            }))
        }
    };
    SubscriptionGroupWrapper::decode(&bytes).map_err(|source| GroupConfigError::Corrupt {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn groups_named_by_heartbeats_are_created_once_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let groups = SubscriptionGroups::open(Some(dir.path())).unwrap();
        assert_eq!(groups.ensure_blocking(["A", "B", "A"]).unwrap(), 2);
        assert_eq!(groups.ensure_blocking(["A", "B"]).unwrap(), 0);
        assert_eq!(groups.ensure_blocking(["bad group"]).unwrap(), 0);
        let a = groups.get("A").unwrap();
        assert!(a.consume_enable);
        assert_eq!(a.retry_max_times, 16);
        let version = groups.snapshot().data_version.counter;
        drop(groups);
        let reopened = SubscriptionGroups::open(Some(dir.path())).unwrap();
        assert!(reopened.get("B").is_some());
        assert_eq!(reopened.snapshot().data_version.counter, version);
    }

    #[test]
    fn an_update_replaces_and_a_delete_removes() {
        let groups = SubscriptionGroups::open(None).unwrap();
        let mut config = SubscriptionGroupConfig::new("G");
        config.consume_enable = false;
        config.retry_max_times = 3;
        assert!(
            groups.consume_enabled("G"),
            "a group without a config consumes"
        );
        groups.upsert_blocking(config.clone()).unwrap();
        assert_eq!(groups.get("G"), Some(config));
        assert!(!groups.consume_enabled("G"));
        assert!(groups.delete_blocking("G").unwrap());
        assert!(!groups.delete_blocking("G").unwrap());
        assert!(groups.get("G").is_none());
        assert!(groups
            .upsert_blocking(SubscriptionGroupConfig::new("no spaces"))
            .is_err());
    }

    #[test]
    fn a_slave_adopts_the_masters_table_only_when_it_differs() {
        let master = SubscriptionGroups::open(None).unwrap();
        master.ensure_blocking(["M1", "M2"]).unwrap();
        let slave = SubscriptionGroups::open(None).unwrap();
        slave.ensure_blocking(["OnlyHere"]).unwrap();
        assert!(slave.adopt_master_blocking(&master.snapshot()).unwrap());
        assert!(slave.get("M1").is_some() && slave.get("OnlyHere").is_none());
        assert!(!slave.adopt_master_blocking(&master.snapshot()).unwrap());
    }

    #[test]
    fn a_broken_file_is_an_error_not_an_empty_table() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        let error = SubscriptionGroups::open(Some(dir.path())).unwrap_err();
        assert!(error.to_string().contains("does not decode"), "{error}");
    }
}
