//! The settings an operator may change while the broker runs (UPDATE_BROKER_CONFIG, code
//! 25, as `mqadmin updateBrokerConfig` sends it), and their current values for
//! GET_BROKER_CONFIG (26): the read-redirect settings of design.md §8.
//!
//! Values live in atomics every shard reads per pull. An update is parsed and checked whole
//! before any value changes, so a request naming one bad key changes nothing. Changes are
//! not written back to broker.conf: a restart starts from the configured values.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use crate::config::BrokerConfig;
use crate::redirect::RedirectSettings;

/// broker.conf / Properties key of `slave_read_enable`.
pub const SLAVE_READ_ENABLE: &str = "slaveReadEnable";
/// broker.conf / Properties key of the page-cache rule's ratio.
pub const ACCESS_MESSAGE_IN_MEMORY_MAX_RATIO: &str = "accessMessageInMemoryMaxRatio";
/// broker.conf / Properties key of the preferred slave for cold reads.
pub const WHICH_BROKER_WHEN_CONSUME_SLOWLY: &str = "whichBrokerWhenConsumeSlowly";

/// The keys UPDATE_BROKER_CONFIG accepts.
pub const CHANGEABLE_KEYS: [&str; 3] = [
    SLAVE_READ_ENABLE,
    ACCESS_MESSAGE_IN_MEMORY_MAX_RATIO,
    WHICH_BROKER_WHEN_CONSUME_SLOWLY,
];

/// One accepted change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    SlaveReadEnable(bool),
    /// Percent of RAM, 0..=100.
    AccessMessageInMemoryMaxRatio(u64),
    WhichBrokerWhenConsumeSlowly(i64),
}

/// Why an update was refused (nothing was changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    #[error("{key} cannot be changed while the broker runs (changeable: slaveReadEnable, accessMessageInMemoryMaxRatio, whichBrokerWhenConsumeSlowly); nothing was changed")]
    NotChangeable { key: String },
    #[error("{key}={value}: {reason}; nothing was changed")]
    BadValue {
        key: String,
        value: String,
        reason: &'static str,
    },
    #[error("the update names no key")]
    Empty,
}

/// Parses a `java.util.Properties` text (`key=value` or `key: value` lines, `#`/`!`
/// comments) into changes; every key must be changeable and every value valid.
pub fn parse_update(text: &str) -> Result<Vec<Change>, UpdateError> {
    let mut changes = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let (key, value) = match line.find(['=', ':']) {
            Some(at) => (line[..at].trim(), line[at + 1..].trim()),
            None => (line, ""),
        };
        let bad = |reason| UpdateError::BadValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason,
        };
        changes.push(match key {
            SLAVE_READ_ENABLE => match value {
                "true" => Change::SlaveReadEnable(true),
                "false" => Change::SlaveReadEnable(false),
                _ => return Err(bad("expected true or false")),
            },
            ACCESS_MESSAGE_IN_MEMORY_MAX_RATIO => Change::AccessMessageInMemoryMaxRatio(
                crate::config::parse_ratio_percent(value).map_err(bad)?,
            ),
            WHICH_BROKER_WHEN_CONSUME_SLOWLY => match value.parse::<i64>() {
                Ok(id) if id >= 0 => Change::WhichBrokerWhenConsumeSlowly(id),
                _ => return Err(bad("expected a broker id (0 or more)")),
            },
            _ => {
                return Err(UpdateError::NotChangeable {
                    key: key.to_owned(),
                })
            }
        });
    }
    if changes.is_empty() {
        return Err(UpdateError::Empty);
    }
    Ok(changes)
}

/// The current values of the changeable settings.
#[derive(Debug)]
pub struct RuntimeConfig {
    slave_read_enable: AtomicBool,
    access_message_in_memory_max_ratio: AtomicU64,
    which_broker_when_consume_slowly: AtomicI64,
}

impl RuntimeConfig {
    /// The configured values (broker.conf, then flags).
    pub fn new(config: &BrokerConfig) -> Self {
        RuntimeConfig {
            slave_read_enable: AtomicBool::new(config.slave_read_enable),
            access_message_in_memory_max_ratio: AtomicU64::new(
                config.access_message_in_memory_max_ratio,
            ),
            which_broker_when_consume_slowly: AtomicI64::new(
                config.which_broker_when_consume_slowly,
            ),
        }
    }

    /// What a pull's redirect decision reads.
    pub fn redirect_settings(&self) -> RedirectSettings {
        RedirectSettings {
            slave_read_enable: self.slave_read_enable.load(Ordering::Relaxed),
            which_broker_when_consume_slowly: self
                .which_broker_when_consume_slowly
                .load(Ordering::Relaxed),
        }
    }

    /// The page-cache rule's ratio, percent of RAM.
    pub fn access_message_in_memory_max_ratio(&self) -> u64 {
        self.access_message_in_memory_max_ratio
            .load(Ordering::Relaxed)
    }

    /// Applies checked changes (the stores' estimators are told by the caller).
    pub fn apply(&self, changes: &[Change]) {
        for change in changes {
            match *change {
                Change::SlaveReadEnable(on) => self.slave_read_enable.store(on, Ordering::Relaxed),
                Change::AccessMessageInMemoryMaxRatio(percent) => self
                    .access_message_in_memory_max_ratio
                    .store(percent, Ordering::Relaxed),
                Change::WhichBrokerWhenConsumeSlowly(id) => self
                    .which_broker_when_consume_slowly
                    .store(id, Ordering::Relaxed),
            }
        }
    }

    /// The settings as `(key, value)` pairs, in Properties form.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let settings = self.redirect_settings();
        vec![
            (SLAVE_READ_ENABLE, settings.slave_read_enable.to_string()),
            (
                ACCESS_MESSAGE_IN_MEMORY_MAX_RATIO,
                self.access_message_in_memory_max_ratio().to_string(),
            ),
            (
                WHICH_BROKER_WHEN_CONSUME_SLOWLY,
                settings.which_broker_when_consume_slowly.to_string(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mqadmin_update_body_parses_into_changes() {
        let body = "#Tue Dec 08 10:00:00 CST 2026\naccessMessageInMemoryMaxRatio=40\nslaveReadEnable = false\nwhichBrokerWhenConsumeSlowly: 2\n";
        assert_eq!(
            parse_update(body),
            Ok(vec![
                Change::AccessMessageInMemoryMaxRatio(40),
                Change::SlaveReadEnable(false),
                Change::WhichBrokerWhenConsumeSlowly(2),
            ])
        );
    }

    #[test]
    fn an_unknown_or_unchangeable_key_refuses_the_whole_update() {
        let error = parse_update("slaveReadEnable=true\nbrokerId=3\n").unwrap_err();
        assert!(matches!(error, UpdateError::NotChangeable { ref key } if key == "brokerId"));
        assert!(error.to_string().contains("cannot be changed"));
        assert!(matches!(
            parse_update("noSuchKey=1"),
            Err(UpdateError::NotChangeable { .. })
        ));
    }

    #[test]
    fn bad_values_and_empty_updates_are_refused() {
        assert!(matches!(
            parse_update("accessMessageInMemoryMaxRatio=101"),
            Err(UpdateError::BadValue { .. })
        ));
        assert!(matches!(
            parse_update("slaveReadEnable=yes"),
            Err(UpdateError::BadValue { .. })
        ));
        assert!(matches!(
            parse_update("whichBrokerWhenConsumeSlowly=-1"),
            Err(UpdateError::BadValue { .. })
        ));
        assert_eq!(
            parse_update("# only a comment\n\n"),
            Err(UpdateError::Empty)
        );
    }

    #[test]
    fn applied_changes_are_read_back() {
        let runtime = RuntimeConfig::new(&BrokerConfig::default());
        assert_eq!(runtime.access_message_in_memory_max_ratio(), 40);
        assert!(runtime.redirect_settings().slave_read_enable);
        runtime.apply(&[
            Change::AccessMessageInMemoryMaxRatio(0),
            Change::SlaveReadEnable(false),
        ]);
        assert_eq!(runtime.access_message_in_memory_max_ratio(), 0);
        assert!(!runtime.redirect_settings().slave_read_enable);
    }
}
