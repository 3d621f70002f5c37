//! `ringmq consume`: reads a topic's readable queues concurrently, one long-polling pull loop
//! per queue, and prints messages as they arrive, until `--count` messages were printed or
//! every queue has been idle for `--wait-ms`.
//!
//! It drives the client's per-queue puller (`ringmq_client::QueuePuller`), which carries the
//! subscription in the request, so it needs no heartbeat and joins no rebalance: it is a
//! reader, not a member of the group. With `--group` it starts at the group's committed
//! offsets and, at the end, commits each queue's offset past the last message it printed
//! (never past one it did not).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ringmq_client::api;
use ringmq_client::core::ClientCore;
use ringmq_client::{
    start_offset, ClientError, ConsumeFrom, MessageExt, MessageQueue, OffsetStore, Pulled,
    QueuePuller, Subscription,
};
use serde_json::json;
use tokio::sync::mpsc;

use crate::output::{message_json, write_stdout, Out};
use crate::timefmt::{format_ms, now_ms, parse_time};
use crate::ConsumeArgs;

/// The group used for pulls when none is given (nothing is committed for it).
pub const READER_GROUP: &str = "ringmq-cli-reader";

/// Messages buffered between the pull loops and the printer.
const CHANNEL_MESSAGES: usize = 1024;

/// Where to start a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum From {
    First,
    Last,
    Time(i64),
    CommittedElseFirst,
}

fn parse_from(text: Option<&str>) -> anyhow::Result<From> {
    Ok(match text {
        None => From::CommittedElseFirst,
        Some("first") => From::First,
        Some("last") => From::Last,
        Some(t) => From::Time(parse_time(t, now_ms()).map_err(anyhow::Error::msg)?),
    })
}

/// The start offset of `mq`: the group's stored offset only for [`From::CommittedElseFirst`].
async fn queue_start(
    core: &ClientCore,
    group: Option<&str>,
    mq: &MessageQueue,
    from: From,
) -> Result<i64, ClientError> {
    let (store, from) = match from {
        From::First => (None, ConsumeFrom::FirstOffset),
        From::Last => (None, ConsumeFrom::LastOffset),
        From::Time(ts) => (None, ConsumeFrom::Timestamp(ts)),
        From::CommittedElseFirst => (group.map(OffsetStore::remote), ConsumeFrom::FirstOffset),
    };
    start_offset(core, store.as_ref(), mq, from).await
}

type Event = Result<MessageExt, anyhow::Error>;

/// Runs `ringmq consume`.
pub async fn consume(
    admin: &ringmq_client::admin::Admin,
    out: Out,
    args: &ConsumeArgs,
) -> anyhow::Result<()> {
    let core = Arc::clone(admin.core());
    let from = parse_from(args.from.as_deref())?;
    let queues = admin
        .topic_queues(&args.topic)
        .await
        .with_context(|| format!("reading the queues of topic {}", args.topic))?;
    let subscription = Subscription::new(&args.topic, &args.tag);
    let wait = Duration::from_millis(args.wait_ms.max(1));
    let (tasks, mut rx) = start_readers(
        &core,
        args.group.as_deref(),
        queues,
        &subscription,
        from,
        wait,
    )
    .await?;

    let limit = args.count.unwrap_or(usize::MAX);
    let mut printed = Vec::new();
    let mut next_offsets: BTreeMap<MessageQueue, i64> = BTreeMap::new();
    let mut failure = None;
    while printed.len() < limit {
        let Some(event) = rx.recv().await else { break };
        match event {
            Ok(m) => {
                if !out.is_json() {
                    write_stdout(&(message_line(&m) + "\n"))?;
                }
                next_offsets.insert(m.queue(), m.queue_offset + 1);
                printed.push(m);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    for task in &tasks {
        task.abort();
    }
    if let (Some(group), None) = (&args.group, &failure) {
        for (mq, offset) in &next_offsets {
            api::update_consumer_offset(&core, group, mq, *offset, false)
                .await
                .with_context(|| {
                    format!(
                        "committing offset {offset} of group {group} on {}:{}",
                        mq.broker_name, mq.queue_id
                    )
                })?;
        }
    }
    if out.is_json() {
        let all: Vec<_> = printed.iter().map(message_json).collect();
        out.emit(&json!(all), String::new)?;
    } else {
        eprintln!("{} message(s)", printed.len());
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Starts one pull loop per queue, each from its start offset (`group`'s committed one only
/// for [`From::CommittedElseFirst`]), pulling as `group` (else [`READER_GROUP`]) and sending
/// what it reads to the returned channel until its queue stays idle for `wait`.
async fn start_readers(
    core: &Arc<ClientCore>,
    group: Option<&str>,
    queues: Vec<MessageQueue>,
    subscription: &Subscription,
    from: From,
    wait: Duration,
) -> anyhow::Result<(Vec<tokio::task::JoinHandle<()>>, mpsc::Receiver<Event>)> {
    let (tx, rx) = mpsc::channel::<Event>(CHANNEL_MESSAGES);
    let mut tasks = Vec::with_capacity(queues.len());
    for mq in queues {
        let offset = queue_start(core, group, &mq, from)
            .await
            .with_context(|| format!("start offset of {}:{}", mq.broker_name, mq.queue_id))?;
        let puller = QueuePuller::new(
            Arc::clone(core),
            group.unwrap_or(READER_GROUP),
            mq,
            subscription.clone(),
            offset,
        )
        .with_suspend_timeout(wait);
        tasks.push(tokio::spawn(read_queue(puller, tx.clone())));
    }
    Ok((tasks, rx))
}

/// Every message of `queues` (of `topic`) from each queue's first offset, read until every
/// queue has been idle for `wait` (pulls as [`READER_GROUP`]: nothing is committed).
pub async fn read_all(
    admin: &ringmq_client::admin::Admin,
    topic: &str,
    queues: Vec<MessageQueue>,
    wait: Duration,
) -> anyhow::Result<Vec<MessageExt>> {
    let subscription = Subscription::new(topic, "*");
    let (tasks, mut rx) =
        start_readers(admin.core(), None, queues, &subscription, From::First, wait).await?;
    let mut all = Vec::new();
    while let Some(event) = rx.recv().await {
        match event {
            Ok(m) => all.push(m),
            Err(e) => {
                for task in &tasks {
                    task.abort();
                }
                return Err(e);
            }
        }
    }
    Ok(all)
}

/// One message on one line: where it is, its ids, tags, keys, born time and body.
fn message_line(m: &MessageExt) -> String {
    format!(
        "{}:{}@{}  {}  tags={}  keys={}  born={}  body={}",
        m.broker_name,
        m.queue_id,
        m.queue_offset,
        m.msg_id(),
        m.tags().unwrap_or_default(),
        m.keys().join(","),
        format_ms(m.born_timestamp),
        printable(&m.body)
    )
}

/// A body as one line of text: UTF-8 (lossy), control characters escaped (`\n`, `\u{1}`), so
/// a binary or multi-line body cannot break the one-message-per-line output.
pub fn printable(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// Pulls until the queue stays empty for the puller's hold (a held pull came back with nothing
/// new), sending each message, or the first error, to `tx`.
async fn read_queue(mut puller: QueuePuller, tx: mpsc::Sender<Event>) {
    loop {
        let at = puller.next_offset();
        match puller.next_batch().await {
            Ok(Pulled::Messages(msgs)) => {
                for m in msgs {
                    if tx.send(Ok(m)).await.is_err() {
                        return;
                    }
                }
            }
            Ok(Pulled::CaughtUp) => return,
            Ok(Pulled::Filtered | Pulled::OffsetMoved { .. }) => {}
            Err(e) => {
                let mq = puller.queue();
                let e = anyhow::Error::new(e).context(format!(
                    "pulling {}:{} at offset {at}",
                    mq.broker_name, mq.queue_id
                ));
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_bodies_are_escaped() {
        assert_eq!(printable(b"a\nb\x01"), "a\\nb\\u{1}");
        assert_eq!(printable("héllo".as_bytes()), "héllo");
    }

    #[test]
    fn from_accepts_first_last_and_times() {
        assert_eq!(parse_from(Some("first")).unwrap(), From::First);
        assert_eq!(parse_from(Some("last")).unwrap(), From::Last);
        assert_eq!(
            parse_from(Some("1700000000000")).unwrap(),
            From::Time(1_700_000_000_000)
        );
        assert_eq!(parse_from(None).unwrap(), From::CommittedElseFirst);
        assert!(parse_from(Some("soon")).is_err());
    }
}
