//! Reader for RocketMQ's `broker.conf` (Java properties: `key=value`, `key: value` or
//! `key value`; `#`/`!` comments), so RocketMQ users can bring the file they have.
//!
//! Only parsing lives here; which keys mean what is decided in `config.rs`. Keys are kept
//! in file order with their line numbers so errors can point at the line.

use std::path::Path;

/// One `key=value` line of a broker.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfEntry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerConfError {
    #[error("cannot read broker config {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Reads and parses a broker.conf file.
pub fn read(path: &Path) -> Result<Vec<ConfEntry>, BrokerConfError> {
    let text = std::fs::read_to_string(path).map_err(|source| BrokerConfError::Read {
        path: path.display().to_string(),
        source,
    })?;
    Ok(parse(&text))
}

/// Parses properties text. Lines without a key are skipped; a key without a value gets "".
/// Line continuations (`\` at the end) are joined, as Java's `Properties.load` does.
pub fn parse(text: &str) -> Vec<ConfEntry> {
    let mut entries = Vec::new();
    let mut pending = String::new();
    let mut pending_line = 0;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if pending.is_empty() {
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            pending_line = index + 1;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            continue;
        }
        pending.push_str(line);
        if let Some(entry) = split_entry(&pending, pending_line) {
            entries.push(entry);
        }
        pending.clear();
    }
    if !pending.is_empty() {
        if let Some(entry) = split_entry(&pending, pending_line) {
            entries.push(entry);
        }
    }
    entries
}

fn split_entry(line: &str, line_number: usize) -> Option<ConfEntry> {
    let separator = line.find(['=', ':', ' ', '\t']).unwrap_or(line.len());
    let key = line.get(..separator)?.trim();
    let rest = line.get(separator..)?.trim_start();
    let value = rest.strip_prefix(['=', ':']).unwrap_or(rest).trim();
    if key.is_empty() {
        return None;
    }
    Some(ConfEntry {
        key: key.to_owned(),
        value: value.to_owned(),
        line: line_number,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text).into_iter().map(|e| (e.key, e.value)).collect()
    }

    #[test]
    fn reads_the_separators_java_properties_accept() {
        let text = "brokerName=broker-a\nbrokerId : 0\nlistenPort 10911\n";
        assert_eq!(
            pairs(text),
            vec![
                ("brokerName".into(), "broker-a".into()),
                ("brokerId".into(), "0".into()),
                ("listenPort".into(), "10911".into()),
            ]
        );
    }

    #[test]
    fn skips_comments_and_blank_lines_and_keeps_line_numbers() {
        let entries = parse("# comment\n\n! other\n  flushDiskType = SYNC_FLUSH  \n");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].key, "flushDiskType");
        assert_eq!(entries[0].value, "SYNC_FLUSH");
        assert_eq!(entries[0].line, 4);
    }

    #[test]
    fn joins_continuation_lines() {
        assert_eq!(
            pairs("namesrvAddr=127.0.0.1:9876;\\\n  127.0.0.2:9876\n"),
            vec![("namesrvAddr".into(), "127.0.0.1:9876;127.0.0.2:9876".into())]
        );
    }

    #[test]
    fn a_key_without_value_is_empty() {
        assert_eq!(pairs("brokerIP1\n"), vec![("brokerIP1".into(), "".into())]);
        assert_eq!(pairs("brokerIP1=\n"), vec![("brokerIP1".into(), "".into())]);
    }
}
