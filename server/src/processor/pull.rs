//! PULL_MESSAGE (11) and LITE_PULL_MESSAGE (361): protocol.md §2.4, §4, §5.
//!
//! The request is checked on the connection's shard (topic, queue, subscription), then the
//! read runs on the queue's owner shard. When nothing is there and the request allows
//! suspension, the pull is held on the owner's long-poll registry until a matching message
//! is appended (the store's arrival listener fires it in the same loop turn as the write,
//! after the fdatasync with `--flush sync`), its hold expires, or the broker shuts down; it
//! is then read once more without suspension and answered with the original opaque.

use std::rc::Rc;

use bytes::Bytes;
use ringmq_engine::consumequeue::TagFilter;
use ringmq_engine::store::GetMessageStatus;
use ringmq_protocol::body::SubscriptionData;
use ringmq_protocol::codes::response_code;
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::ext::CommandHeader;
use ringmq_protocol::headers::{PullMessageRequestHeader, PullMessageResponseHeader, PullSysFlag};
use ringmq_protocol::message::tag_hash::java_string_hash;

use super::{decode_header, error_chain, error_response};
use crate::broker::{now_ms, with_limit, BrokerShard};
use crate::connection::{Connection, Response};
use crate::long_poll::{hold_deadline_ms, PullHold};
use crate::stats::BrokerStats;
use crate::topics::is_readable;

/// Java's cap on bytes returned by one pull from memory (256 KiB) applies in the store; this
/// is the budget handed to it when the request names none.
const DEFAULT_MAX_PULL_BYTES: u64 = 256 * 1024;
/// Extra time a held pull waits beyond its deadline for the expiry task before giving up on
/// its own (a safety net; the expiry task normally answers first).
const HOLD_SLACK_MS: u64 = 1_000;

/// What the owner shard reads for one pull (all `Send`: it may cross shards).
#[derive(Debug)]
struct PullArgs {
    topic: String,
    queue_id: i32,
    offset: i64,
    max_msgs: u32,
    max_bytes: u64,
    filter: TagFilter,
    /// Hold for this long when nothing is there (None: answer at once).
    hold_ms: Option<u64>,
    connection_id: u64,
    /// Store `(group, offset)` as the group's consumer offset first (FLAG_COMMIT_OFFSET).
    commit: Option<(String, i64)>,
}

/// The owner's answer.
#[derive(Debug)]
struct PullOutcome {
    status: GetMessageStatus,
    next_begin_offset: i64,
    min_offset: i64,
    max_offset: i64,
    messages: usize,
    body: Bytes,
}

/// Handles codes 11 and 361.
pub async fn pull(
    shard: &Rc<BrokerShard>,
    connection: &Rc<Connection>,
    request: &RemotingCommand,
) -> Response {
    match pull_inner(shard, connection, request).await {
        Ok(response) => response,
        Err(response) => Response::Command(response),
    }
}

async fn pull_inner(
    shard: &Rc<BrokerShard>,
    connection: &Rc<Connection>,
    request: &RemotingCommand,
) -> Result<Response, RemotingCommand> {
    let header: PullMessageRequestHeader = decode_header(request)?;
    let shared = &shard.shared;
    let Some(topic_config) = shared.topics.get(&header.topic) else {
        return Err(error_response(
            request,
            response_code::TOPIC_NOT_EXIST,
            format!("topic[{}] not exist, apply first please!", header.topic),
        ));
    };
    if !is_readable(topic_config.perm) {
        return Err(error_response(
            request,
            response_code::NO_PERMISSION,
            format!("the topic[{}] pulling message is forbidden", header.topic),
        ));
    }
    if header.queue_id < 0 || header.queue_id >= topic_config.read_queue_nums {
        return Err(error_response(
            request,
            response_code::INVALID_PARAMETER,
            format!(
                "queueId[{}] is illegal, topic:[{}] topicConfig.readQueueNums:[{}] consumer:[{}]",
                header.queue_id, header.topic, topic_config.read_queue_nums, connection.peer
            ),
        ));
    }
    let filter = subscription_filter(shard, request, &header)?;
    let flags = header.sys_flag;
    let hold_ms = flags.contains(PullSysFlag::SUSPEND).then(|| {
        hold_deadline_ms(
            0,
            header.suspend_timeout_millis,
            shared.config.max_hold.as_millis() as u64,
        )
    });
    let commit = (flags.contains(PullSysFlag::COMMIT_OFFSET) && header.commit_offset >= 0)
        .then(|| (header.consumer_group.clone(), header.commit_offset));
    let args = PullArgs {
        topic: header.topic.clone(),
        queue_id: header.queue_id,
        offset: header.queue_offset,
        max_msgs: u32::try_from(header.max_msg_nums.max(1)).unwrap_or(32),
        max_bytes: header
            .max_msg_bytes
            .and_then(|b| u64::try_from(b).ok())
            .filter(|b| *b > 0)
            .unwrap_or(DEFAULT_MAX_PULL_BYTES),
        filter,
        hold_ms,
        connection_id: connection.id,
        commit,
    };
    let owner = shard.owner_of(&header.topic, header.queue_id);
    let outcome = shard
        .on_shard(owner, move |owner: Rc<BrokerShard>| async move {
            read_on_owner(&owner, args).await
        })
        .await
        .map_err(|error| error_response(request, response_code::SYSTEM_ERROR, error.to_string()))?
        .map_err(|remark| error_response(request, response_code::SYSTEM_ERROR, remark))?;
    BrokerStats::add(&shared.stats.messages_got, outcome.messages as u64);
    Ok(compose(request, &header, outcome))
}

/// The tag filter of this pull: the request's own subscription with FLAG_SUBSCRIPTION,
/// otherwise the one the group registered by heartbeat (protocol.md §2.4 step 5).
fn subscription_filter(
    shard: &Rc<BrokerShard>,
    request: &RemotingCommand,
    header: &PullMessageRequestHeader,
) -> Result<TagFilter, RemotingCommand> {
    let expression_type = header.expression_type.as_deref().unwrap_or("TAG");
    if !expression_type.is_empty() && !expression_type.eq_ignore_ascii_case("TAG") {
        return Err(error_response(
            request,
            response_code::SUBSCRIPTION_PARSE_FAILED,
            format!("expression type {expression_type} is not supported (only TAG)"),
        ));
    }
    if header.sys_flag.contains(PullSysFlag::SUBSCRIPTION) {
        let expression = header.subscription.as_deref().unwrap_or("*");
        return Ok(filter_from_expression(expression));
    }
    let Some(subscription) = shard
        .shared
        .groups
        .subscription(&header.consumer_group, &header.topic)
    else {
        return Err(error_response(
            request,
            response_code::SUBSCRIPTION_NOT_EXIST,
            format!(
                "the consumer's subscription not exist, group: {} topic: {}",
                header.consumer_group, header.topic
            ),
        ));
    };
    if subscription.sub_version < header.sub_version {
        return Err(error_response(
            request,
            response_code::SUBSCRIPTION_NOT_LATEST,
            "the consumer's subscription not latest",
        ));
    }
    Ok(filter_from_subscription(&subscription))
}

/// `*`, empty, or `tagA || tagB` (protocol.md §4.2).
pub fn filter_from_expression(expression: &str) -> TagFilter {
    let codes: Vec<i32> = expression
        .split("||")
        .map(str::trim)
        .filter(|tag| !tag.is_empty() && *tag != "*")
        .map(java_string_hash)
        .collect();
    TagFilter::from_subscription(expression.trim(), codes)
}

fn filter_from_subscription(subscription: &SubscriptionData) -> TagFilter {
    if subscription.code_set.is_empty() {
        // Some clients send tagsSet without codeSet: derive the codes from the expression.
        return filter_from_expression(&subscription.sub_string);
    }
    TagFilter::from_subscription(
        subscription.sub_string.trim(),
        subscription.code_set.iter().copied(),
    )
}

/// Whether a pull result answers PULL_NOT_FOUND (19), i.e. may be held.
fn is_not_found(status: GetMessageStatus, offset: i64) -> bool {
    pull_code(status, offset) == response_code::PULL_NOT_FOUND
}

/// Store status → response code (protocol.md §2.4 table).
pub fn pull_code(status: GetMessageStatus, request_offset: i64) -> i32 {
    match status {
        GetMessageStatus::Found => response_code::SUCCESS,
        GetMessageStatus::NoMatchedMessage | GetMessageStatus::MessageWasRemoving => {
            response_code::PULL_RETRY_IMMEDIATELY
        }
        GetMessageStatus::NoMatchedLogicQueue | GetMessageStatus::NoMessageInQueue => {
            if request_offset != 0 {
                response_code::PULL_OFFSET_MOVED
            } else {
                response_code::PULL_NOT_FOUND
            }
        }
        GetMessageStatus::OffsetTooSmall | GetMessageStatus::OffsetOverflowBadly => {
            response_code::PULL_OFFSET_MOVED
        }
        GetMessageStatus::OffsetOverflowOne | GetMessageStatus::OffsetFoundNull => {
            response_code::PULL_NOT_FOUND
        }
    }
}

/// Runs on the queue's owner shard: commit the offset, read, maybe hold, read again.
async fn read_on_owner(shard: &Rc<BrokerShard>, args: PullArgs) -> Result<PullOutcome, String> {
    if let Some((group, offset)) = &args.commit {
        shard
            .offsets
            .borrow_mut()
            .commit(group, &args.topic, args.queue_id, *offset);
    }
    let mut outcome = read_once(shard, &args).await?;
    let Some(hold_ms) = args.hold_ms else {
        return Ok(outcome);
    };
    if !is_not_found(outcome.status, args.offset) {
        return Ok(outcome);
    }
    let (waiter, woken) = futures_channel::oneshot::channel();
    let now = now_ms();
    let hold = PullHold {
        topic: &args.topic,
        queue_id: args.queue_id,
        offset: args.offset,
        filter: args.filter.clone(),
        deadline_ms: now + hold_ms,
        connection_id: args.connection_id,
    };
    let held = shard.held.borrow_mut().hold(hold, waiter);
    let Ok(hold_id) = held else {
        // Too many pulls held on this shard: answer now; the client pulls again.
        return Ok(outcome);
    };
    shard.held_changed();
    // A message may have become readable while the first read was in flight: its arrival
    // went by before the hold existed. Re-check before sleeping.
    if shard.store.max_offset(&args.topic, args.queue_id) > args.offset {
        shard.held.borrow_mut().cancel(hold_id);
    } else {
        // Fired by an arrival, the expiry task or shutdown; dropped with the connection.
        let _ = with_limit(
            woken,
            std::time::Duration::from_millis(hold_ms + HOLD_SLACK_MS),
        )
        .await;
    }
    outcome = read_once(shard, &args).await?;
    Ok(outcome)
}

async fn read_once(shard: &Rc<BrokerShard>, args: &PullArgs) -> Result<PullOutcome, String> {
    let result = shard
        .store
        .get_messages(
            &args.topic,
            args.queue_id,
            args.offset,
            args.max_msgs,
            args.max_bytes,
            &args.filter,
        )
        .await
        .map_err(|error| error_chain(&error))?;
    Ok(PullOutcome {
        status: result.status,
        next_begin_offset: result.next_begin_offset,
        min_offset: result.min_offset,
        max_offset: result.max_offset,
        messages: result.messages.len(),
        body: result.data,
    })
}

fn compose(
    request: &RemotingCommand,
    header: &PullMessageRequestHeader,
    outcome: PullOutcome,
) -> Response {
    let code = pull_code(outcome.status, header.queue_offset);
    let response_header = PullMessageResponseHeader {
        // A master with no slave reading: always "come back to me" (protocol.md §9.1).
        suggest_which_broker_id: 0,
        next_begin_offset: outcome.next_begin_offset,
        min_offset: outcome.min_offset,
        max_offset: outcome.max_offset,
        offset_delta: None,
        topic_sys_flag: None,
        group_sys_flag: None,
        forbidden_type: None,
    };
    let mut response =
        RemotingCommand::response_to(request, code).with_remark(outcome.status.as_str());
    response_header.write_ext(&mut response.ext_fields);
    if code == response_code::SUCCESS {
        Response::Parts {
            header: response,
            body_parts: vec![outcome.body],
        }
    } else {
        Response::Command(response)
    }
}
