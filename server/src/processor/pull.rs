//! PULL_MESSAGE (11) and LITE_PULL_MESSAGE (361): protocol.md §2.4, §4, §5.
//!
//! The request is decoded and checked here, on the connection's shard (topic, queue,
//! subscription); [`Shard::pull`] reads it on the queue's owner and holds it there when
//! nothing is new (`shard::long_poll`); the answer is composed here with the original
//! opaque: the stored records as they are, behind the response header.

use std::rc::Rc;
use std::sync::Arc;

use ringmq_engine::consumequeue::TagFilter;
use ringmq_protocol::body::SubscriptionData;
use ringmq_protocol::codes::response_code;
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::ext::CommandHeader;
use ringmq_protocol::headers::{PullMessageRequestHeader, PullMessageResponseHeader, PullSysFlag};
use ringmq_protocol::message::tag_hash::java_string_hash;

use super::error::pull_code;
use super::{decode_header, Refused};
use crate::config::Role;
use crate::connection::{Connection, Response};
use crate::redirect::suggest_broker_id;
use crate::redirect::ReadVerdict;
use crate::shard::{PullOutcome, PullQuery, Shard};
use crate::stats::BrokerStats;
use crate::topics::is_readable;

/// Java's cap on bytes returned by one pull from memory (256 KiB) applies in the store; this
/// is the budget handed to it when the request names none.
const DEFAULT_MAX_PULL_BYTES: u64 = 256 * 1024;

/// Handles codes 11 and 361: validate, pull on the shard (which may hold it), answer.
pub async fn pull(
    shard: &Rc<Shard>,
    connection: &Rc<Connection>,
    request: &RemotingCommand,
) -> Result<Response, Refused> {
    let header: PullMessageRequestHeader = decode_header(request)?;
    let shared = shard.shared();
    let Some(topic_config) = shared.topics.get(&header.topic) else {
        if shared.config.role == Role::Slave {
            // The master may redirect a consumer here before this slave has copied a new
            // topic's config (every few seconds): send it back rather than fail its pull.
            return Ok(retry_at_master(request, header.queue_offset));
        }
        return Err(Refused::TopicNotExist {
            topic: header.topic,
        });
    };
    if !is_readable(topic_config.perm) {
        return Err(Refused::PullForbidden {
            topic: header.topic,
        });
    }
    if header.queue_id < 0 || header.queue_id >= topic_config.read_queue_nums {
        return Err(Refused::QueueIdIllegal {
            queue_id: header.queue_id,
            topic: header.topic,
            read_queue_nums: topic_config.read_queue_nums,
            consumer: connection.peer,
        });
    }
    if !shared
        .subscription_groups
        .consume_enabled(&header.consumer_group)
    {
        return Err(Refused::GroupConsumeDisabled {
            group: header.consumer_group,
        });
    }
    let filter = subscription_filter(shard, &header)?;
    let settings = shared.runtime.redirect_settings();
    if shared.config.role == Role::Slave && !settings.slave_read_enable {
        // RocketMQ 4.x: a slave that may not serve reads answers "retry, at the master".
        return Ok(retry_at_master(request, header.queue_offset));
    }
    let flags = header.sys_flag;
    let suspend_timeout_ms = flags
        .contains(PullSysFlag::SUSPEND)
        .then_some(header.suspend_timeout_millis);
    let commit = (flags.contains(PullSysFlag::COMMIT_OFFSET) && header.commit_offset >= 0)
        .then(|| (header.consumer_group.clone(), header.commit_offset));
    let query = PullQuery {
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
        suspend_timeout_ms,
        connection_id: connection.id,
        connection_memory: Arc::clone(connection.memory()),
        commit,
    };
    let outcome = shard.pull(query).await?;
    let stats = &shared.stats;
    BrokerStats::add(&stats.messages_got, outcome.messages as u64);
    let own_broker_id = shared.config.broker_id;
    let suggested = suggest_broker_id(
        shared.config.role,
        own_broker_id,
        settings,
        outcome.verdict,
        &outcome.followers,
    );
    match outcome.verdict {
        ReadVerdict::Hot => BrokerStats::add(&stats.page_cache_hot_reads, 1),
        ReadVerdict::Cold { .. } => BrokerStats::add(&stats.page_cache_cold_reads, 1),
        ReadVerdict::NothingRead => {}
    }
    if suggested != own_broker_id {
        BrokerStats::add(&stats.pulls_redirected, 1);
    }
    Ok(compose(request, &header, outcome, suggested))
}

/// A slave's answer to a pull it does not serve (slave reads off, or a topic it has not
/// copied yet): no messages, pull the same offset again from the master (broker id 0). Clients take `nextBeginOffset` of a retry as the
/// next offset, so it is the requested one.
fn retry_at_master(request: &RemotingCommand, queue_offset: i64) -> Response {
    let header = PullMessageResponseHeader {
        suggest_which_broker_id: 0,
        next_begin_offset: queue_offset,
        min_offset: 0,
        max_offset: 0,
        offset_delta: None,
        topic_sys_flag: None,
        group_sys_flag: None,
        forbidden_type: None,
    };
    let mut response = RemotingCommand::response_to(request, response_code::PULL_RETRY_IMMEDIATELY)
        .with_remark(
            "this slave does not serve this pull (slaveReadEnable=false, or the topic is not copied yet): pull from the master",
        );
    header.write_ext(&mut response.ext_fields);
    Response::Command(response)
}

/// The tag filter of this pull: the request's own subscription with FLAG_SUBSCRIPTION,
/// otherwise the one the group registered by heartbeat (protocol.md §2.4 step 5).
fn subscription_filter(
    shard: &Shard,
    header: &PullMessageRequestHeader,
) -> Result<TagFilter, Refused> {
    let expression_type = header.expression_type.as_deref().unwrap_or("TAG");
    if !expression_type.is_empty() && !expression_type.eq_ignore_ascii_case("TAG") {
        return Err(Refused::ExpressionTypeUnsupported {
            expression_type: expression_type.to_owned(),
        });
    }
    if header.sys_flag.contains(PullSysFlag::SUBSCRIPTION) {
        let expression = header.subscription.as_deref().unwrap_or("*");
        return Ok(filter_from_expression(expression));
    }
    let Some(subscription) = shard
        .shared()
        .groups
        .subscription(&header.consumer_group, &header.topic)
    else {
        return Err(Refused::SubscriptionNotExist {
            group: header.consumer_group.clone(),
            topic: header.topic.clone(),
        });
    };
    if subscription.sub_version < header.sub_version {
        return Err(Refused::SubscriptionNotLatest);
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

fn compose(
    request: &RemotingCommand,
    header: &PullMessageRequestHeader,
    outcome: PullOutcome,
    suggest_which_broker_id: i64,
) -> Response {
    let code = pull_code(outcome.status, header.queue_offset);
    let response_header = PullMessageResponseHeader {
        suggest_which_broker_id,
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
            memory: outcome.memory,
        }
    } else {
        Response::Command(response)
    }
}
