//! `ringmq consume`: reads a topic's readable queues concurrently, one long-polling pull loop
//! per queue, and prints messages as they arrive, until `--count` messages were printed or
//! every queue has been idle for `--wait-ms`.
//!
//! It drives the client's pull call (`ringmq_client::api::pull`) with the subscription in the
//! request, so it needs no heartbeat and joins no rebalance: it is a reader, not a member of
//! the group. With `--group` it starts at the group's committed offsets and, at the end,
//! commits each queue's offset past the last message it printed (never past one it did not).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ringmq_client::api::{self, PullArgs, PullStatus};
use ringmq_client::core::ClientCore;
use ringmq_client::protocol::codes::request_code;
use ringmq_client::protocol::headers::PullSysFlag;
use ringmq_client::{ClientError, MessageExt, MessageQueue, Subscription};
use serde_json::json;
use tokio::sync::mpsc;

use crate::commands::{message_json, write_stdout, Out};
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

async fn start_offset(
    core: &ClientCore,
    group: Option<&str>,
    mq: &MessageQueue,
    from: From,
) -> Result<i64, ClientError> {
    match from {
        From::First => api::min_offset(core, mq).await,
        From::Last => api::max_offset(core, mq).await,
        From::Time(ts) => api::search_offset(core, mq, ts).await,
        From::CommittedElseFirst => {
            if let Some(group) = group {
                if let Some(offset) = api::query_consumer_offset(core, group, mq).await? {
                    if offset >= 0 {
                        return Ok(offset);
                    }
                }
            }
            api::min_offset(core, mq).await
        }
    }
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
    let (tx, mut rx) = mpsc::channel::<Event>(CHANNEL_MESSAGES);
    let mut tasks = Vec::with_capacity(queues.len());
    for mq in queues {
        let offset = start_offset(&core, args.group.as_deref(), &mq, from)
            .await
            .with_context(|| format!("start offset of {}:{}", mq.broker_name, mq.queue_id))?;
        let addr = api::master_addr(&core, &mq)
            .await
            .with_context(|| format!("broker of {}:{}", mq.broker_name, mq.queue_id))?;
        let reader = QueueReader {
            core: Arc::clone(&core),
            addr,
            mq,
            group: args
                .group
                .clone()
                .unwrap_or_else(|| READER_GROUP.to_owned()),
            offset,
            expression: subscription.expression.clone(),
            tags: subscription.tags.clone(),
            wait,
        };
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move { reader.run(tx).await }));
    }
    drop(tx);

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

struct QueueReader {
    core: Arc<ClientCore>,
    addr: String,
    mq: MessageQueue,
    group: String,
    offset: i64,
    expression: String,
    tags: Vec<String>,
    wait: Duration,
}

impl QueueReader {
    /// Pulls until the queue stays empty for `wait` (a held pull came back empty), sending
    /// each message, or the first error, to `tx`.
    async fn run(mut self, tx: mpsc::Sender<Event>) {
        loop {
            let args = PullArgs {
                group: &self.group,
                mq: &self.mq,
                offset: self.offset,
                max_msgs: 32,
                sys_flag: PullSysFlag::SUSPEND.bits() | PullSysFlag::SUBSCRIPTION.bits(),
                commit_offset: 0,
                suspend_timeout: self.wait,
                subscription: Some(&self.expression),
                tags: &self.tags,
                sub_version: 0,
                code: request_code::PULL_MESSAGE,
                timeout: self.wait + Duration::from_secs(5),
            };
            let result = match api::pull(&self.core, &self.addr, &args).await {
                Ok(r) => r,
                Err(e) => {
                    let e = anyhow::Error::new(e).context(format!(
                        "pulling {}:{} at offset {}",
                        self.mq.broker_name, self.mq.queue_id, self.offset
                    ));
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            self.offset = result.next_begin_offset;
            match result.status {
                PullStatus::Found => {
                    for m in result.messages {
                        if tx.send(Ok(m)).await.is_err() {
                            return;
                        }
                    }
                }
                PullStatus::NoNewMsg => return,
                PullStatus::NoMatchedMsg | PullStatus::OffsetIllegal => {}
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
