//! `ringmq dlq`: a consumer group's dead letters, the messages its consumers failed more than
//! `maxReconsumeTimes` times, which the broker moved to `%DLQ%<group>`. `list` prints them
//! with the topic they came from; `resend` sends copies back to that topic (all of them, or
//! the one named by `--msg-id`), keeping body, tags, keys, user properties and the message id,
//! so the group's consumers get them again. The dead letters stay where they are (RocketMQ's
//! dashboard resends the same way).

use std::time::Duration;

use anyhow::Context as _;
use ringmq_client::protocol::message::properties::keys;
use ringmq_client::{Message, MessageExt, Producer, ProducerConfig};
use serde_json::json;

use crate::consume::{printable, read_all};
use crate::output::{message_json, Out};
use crate::table::Table;
use crate::timefmt::format_ms;

/// The dead-letter topic of `group`.
pub fn dlq_topic(group: &str) -> String {
    format!("%DLQ%{group}")
}

/// The topic a dead letter came from: RETRY_TOPIC, which the broker sets when it first
/// sends a message back, else the topic it was read from.
pub fn original_topic(m: &MessageExt) -> &str {
    m.property(keys::RETRY_TOPIC).unwrap_or(&m.topic)
}

/// Properties that describe a message's trip through retry and DLQ, not the message: a
/// resent copy starts afresh without them.
const TRIP_PROPERTIES: &[&str] = &[
    keys::RETRY_TOPIC,
    keys::ORIGIN_MESSAGE_ID,
    keys::DLQ_ORIGIN_MESSAGE_ID,
    keys::REAL_TOPIC,
    keys::REAL_QID,
    keys::DELAY,
    "MAX_OFFSET",
    "MIN_OFFSET",
    "CONSUME_START_TIME",
];

/// A copy of dead letter `m` for its original topic.
pub fn resend_copy(m: &MessageExt) -> Message {
    let mut copy = Message::new(original_topic(m).to_owned(), m.body.clone()).with_flag(m.flag);
    for (key, value) in m.properties.iter() {
        if !TRIP_PROPERTIES.contains(&key) {
            copy = copy.with_property(key, value);
        }
    }
    copy
}

/// `ringmq dlq list GROUP`.
pub async fn list(
    admin: &ringmq_client::admin::Admin,
    out: Out,
    group: &str,
    wait: Duration,
) -> anyhow::Result<()> {
    let letters = read_dead_letters(admin, group, wait).await?;
    let rows: Vec<_> = letters
        .iter()
        .map(|m| {
            let mut row = message_json(m);
            row["original_topic"] = json!(original_topic(m));
            row
        })
        .collect();
    out.emit(&json!(rows), || {
        let mut t = Table::new(&[
            "msg id",
            "original topic",
            "reconsumed",
            "tags",
            "keys",
            "stored",
            "body",
        ]);
        for m in &letters {
            t.row([
                m.msg_id().to_owned(),
                original_topic(m).to_owned(),
                m.reconsume_times.to_string(),
                m.tags().unwrap_or_default().to_owned(),
                m.keys().join(","),
                format_ms(m.store_timestamp),
                printable(&m.body),
            ]);
        }
        format!(
            "{} dead letter(s) of group {group}\n{}",
            letters.len(),
            t.render()
        )
    })
}

/// `ringmq dlq resend GROUP [--msg-id ID]`.
pub async fn resend(
    admin: &ringmq_client::admin::Admin,
    namesrv: &str,
    out: Out,
    group: &str,
    msg_id: Option<&str>,
    wait: Duration,
) -> anyhow::Result<()> {
    let letters = read_dead_letters(admin, group, wait).await?;
    let chosen: Vec<&MessageExt> = letters
        .iter()
        .filter(|m| msg_id.is_none_or(|id| m.msg_id() == id || m.offset_msg_id == id))
        .collect();
    if let (Some(id), true) = (msg_id, chosen.is_empty()) {
        anyhow::bail!(
            "no dead letter of group {group} has msg id {id} ({} dead letter(s); `ringmq dlq list {group}` shows them)",
            letters.len()
        );
    }
    let producer = Producer::start(ProducerConfig::new(namesrv, "ringmq-cli-dlq-resend"))
        .await
        .context("starting the producer")?;
    let mut results = Vec::new();
    let mut failure = None;
    for m in chosen {
        match producer.send(resend_copy(m)).await {
            Ok(r) => results.push(json!({
                "msg_id": m.msg_id(),
                "topic": original_topic(m),
                "status": format!("{:?}", r.status),
                "broker": r.queue.broker_name,
                "queue": r.queue.queue_id,
                "queue_offset": r.queue_offset,
            })),
            Err(e) => {
                failure = Some(anyhow::Error::new(e).context(format!(
                    "resending {} to topic {}",
                    m.msg_id(),
                    original_topic(m)
                )));
                break;
            }
        }
    }
    producer.shutdown().await;
    out.emit(&json!(results), || {
        let mut t = Table::new(&["msg id", "topic", "status", "broker", "queue", "offset"]);
        for r in &results {
            t.row([
                r["msg_id"].as_str().unwrap_or_default().to_owned(),
                r["topic"].as_str().unwrap_or_default().to_owned(),
                r["status"].as_str().unwrap_or_default().to_owned(),
                r["broker"].as_str().unwrap_or_default().to_owned(),
                r["queue"].to_string(),
                r["queue_offset"].to_string(),
            ]);
        }
        format!("{} dead letter(s) resent\n{}", results.len(), t.render())
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn read_dead_letters(
    admin: &ringmq_client::admin::Admin,
    group: &str,
    wait: Duration,
) -> anyhow::Result<Vec<MessageExt>> {
    let topic = dlq_topic(group);
    let Ok(queues) = admin.topic_queues(&topic).await else {
        // No route: the group never had a dead letter (the broker creates the topic with its
        // first one).
        return Ok(Vec::new());
    };
    read_all(admin, &topic, queues, wait).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringmq_client::protocol::message::properties::Properties;

    #[test]
    fn a_resent_copy_goes_to_the_original_topic_without_its_retry_trip() {
        let mut properties = Properties::new();
        properties.insert(keys::RETRY_TOPIC, "Orders");
        properties.insert(keys::ORIGIN_MESSAGE_ID, "0A000001");
        properties.insert(keys::TAGS, "paid");
        properties.insert(keys::UNIQ_KEY, "ABC");
        properties.insert("customer", "42");
        let m = MessageExt {
            topic: "%DLQ%g".to_owned(),
            broker_name: "b".to_owned(),
            queue_id: 0,
            queue_offset: 0,
            commit_log_offset: 0,
            body: bytes::Bytes::from_static(b"x"),
            flag: 3,
            sys_flag: 0,
            properties,
            born_timestamp: 0,
            born_host: "127.0.0.1:1".parse().unwrap_or_else(|_| unreachable!()),
            store_timestamp: 0,
            store_host: "127.0.0.1:2".parse().unwrap_or_else(|_| unreachable!()),
            reconsume_times: 16,
            offset_msg_id: "OFF".to_owned(),
        };
        assert_eq!(original_topic(&m), "Orders");
        let copy = resend_copy(&m);
        assert_eq!(copy.topic, "Orders");
        assert_eq!(copy.flag, 3);
        assert_eq!(copy.properties.get(keys::TAGS), Some("paid"));
        assert_eq!(copy.properties.get(keys::UNIQ_KEY), Some("ABC"));
        assert_eq!(copy.properties.get("customer"), Some("42"));
        assert_eq!(copy.properties.get(keys::RETRY_TOPIC), None);
        assert_eq!(copy.properties.get(keys::ORIGIN_MESSAGE_ID), None);
    }
}
