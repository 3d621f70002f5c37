//! `MessageQueue`: the (topic, broker, queue id) triple that names one queue in
//! lock bodies, consume stats and broadcast offset files.

use serde::{Deserialize, Serialize};

/// One queue of a topic on one broker (Java `MessageQueue`).
///
/// Ordered like Java's `compareTo`: topic, then broker name, then queue id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MessageQueue {
    /// Topic name.
    pub topic: String,
    /// Broker name (not address) holding the queue.
    pub broker_name: String,
    /// Queue id within the topic on that broker.
    pub queue_id: i32,
}

impl MessageQueue {
    /// A queue of `topic` on `broker_name`.
    pub fn new(topic: impl Into<String>, broker_name: impl Into<String>, queue_id: i32) -> Self {
        MessageQueue {
            topic: topic.into(),
            broker_name: broker_name.into(),
            queue_id,
        }
    }
}
