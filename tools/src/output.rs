//! How the commands print: a table for people, or (with `--json`) one JSON document for
//! scripts; messages have one JSON form wherever they appear.

use std::collections::BTreeMap;

use anyhow::Context as _;
use ringmq_client::MessageExt;
use serde_json::{json, Value};

/// Where output goes: tables, or JSON.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    json: bool,
}

impl Out {
    /// JSON when `json`, else tables.
    pub fn new(json: bool) -> Self {
        Out { json }
    }

    /// Is the output JSON?
    pub fn is_json(self) -> bool {
        self.json
    }

    /// Prints `value` as JSON, or `human` as it is.
    pub fn emit(self, value: &Value, human: impl FnOnce() -> String) -> anyhow::Result<()> {
        if self.json {
            let text = serde_json::to_string_pretty(value).context("encoding JSON output")?;
            write_stdout(&(text + "\n"))
        } else {
            write_stdout(&human())
        }
    }
}

/// Writes to stdout; a closed pipe (`ringmq ... | head`) is not an error.
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to stdout"))
        }
        _ => Ok(()),
    }
}

/// A message as JSON (body as UTF-8 text, lossy).
pub fn message_json(m: &MessageExt) -> Value {
    let properties: BTreeMap<&str, &str> = m.properties.iter().collect();
    json!({
        "topic": m.topic,
        "broker": m.broker_name,
        "queue": m.queue_id,
        "queue_offset": m.queue_offset,
        "msg_id": m.msg_id(),
        "offset_msg_id": m.offset_msg_id,
        "tags": m.tags(),
        "keys": m.keys(),
        "born_timestamp": m.born_timestamp,
        "born_host": m.born_host.to_string(),
        "store_timestamp": m.store_timestamp,
        "store_host": m.store_host.to_string(),
        "reconsume_times": m.reconsume_times,
        "commit_log_offset": m.commit_log_offset,
        "properties": properties,
        "body": String::from_utf8_lossy(&m.body),
    })
}
