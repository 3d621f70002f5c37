//! Request and response code tables (protocol.md §2.1, §2.2).
//!
//! Codes are plain `i32` constants rather than enums: a command's `code` is an `i32` on the
//! wire, unknown codes must flow through untouched (a request with an unknown code is answered
//! with [`response_code::REQUEST_CODE_NOT_SUPPORTED`], a response with an unknown code is still
//! a response), and constants read naturally in patterns:
//!
//! ```
//! use ringmq_protocol::codes::request_code;
//!
//! fn is_pull(code: i32) -> bool {
//!     matches!(code, request_code::PULL_MESSAGE | request_code::LITE_PULL_MESSAGE)
//! }
//! assert!(is_pull(361));
//! assert_eq!(request_code::name(310), Some("SEND_MESSAGE_V2"));
//! ```
//!
//! Request and response codes live in separate namespaces and do overlap numerically
//! (215 is `DELETE_TOPIC_IN_BROKER` as a request and `FLOW_CONTROL` as a response), so
//! always look a code up in the table matching the command's direction.
//!
//! Each table is written once, through a macro that also generates its `name` lookup and
//! `ALL` list, so a constant cannot exist without a name; a duplicated value would make the
//! generated `match` unreachable and fail the build under `-D warnings`.

/// Declares a table of `pub const NAME: i32` plus `name()` and `ALL` for it.
macro_rules! code_table {
    ($( $(#[doc = $doc:literal])* $name:ident = $value:literal; )*) => {
        $(
            $(#[doc = $doc])*
            pub const $name: i32 = $value;
        )*

        /// Every code of this table with its Java constant name, in declaration order.
        pub const ALL: &[(i32, &str)] = &[ $( ($value, stringify!($name)), )* ];

        /// The Java constant name of `code`, for logs; `None` for a code this table does not know.
        // A `match` on literals compiles to a jump table or binary search, and rejects
        // duplicate values at build time (unreachable pattern).
        #[must_use]
        #[deny(unreachable_patterns)]
        pub fn name(code: i32) -> Option<&'static str> {
            match code {
                $( $value => Some(stringify!($name)), )*
                _ => None,
            }
        }
    };
}

/// Request codes (`RequestCode`): what a request asks for. protocol.md §2.2.
pub mod request_code {
    code_table! {
        /// Send one message, long header field names (protocol.md §2.3).
        SEND_MESSAGE = 10;
        /// Pull messages from one queue (protocol.md §2.4).
        PULL_MESSAGE = 11;
        /// Query messages by key through the index file.
        QUERY_MESSAGE = 12;
        /// Deprecated; seen on the wire from old tools.
        QUERY_BROKER_OFFSET = 13;
        /// Read a group's committed offset for one queue (protocol.md §2.5).
        QUERY_CONSUMER_OFFSET = 14;
        /// Commit a group's offset for one queue; usually sent oneway (protocol.md §2.5).
        UPDATE_CONSUMER_OFFSET = 15;
        /// Admin: create or update a topic on a broker (protocol.md §2.15).
        UPDATE_AND_CREATE_TOPIC = 17;
        /// Admin/slave: every topic config of a broker.
        GET_ALL_TOPIC_CONFIG = 21;
        /// Admin: change broker configuration.
        UPDATE_BROKER_CONFIG = 25;
        /// Admin: read broker configuration.
        GET_BROKER_CONFIG = 26;
        /// Admin: runtime statistics as a KVTable.
        GET_BROKER_RUNTIME_INFO = 28;
        /// Logical offset of a queue at a store timestamp (protocol.md §2.10).
        SEARCH_OFFSET_BY_TIMESTAMP = 29;
        /// Max logical offset of a queue (protocol.md §2.10).
        GET_MAX_OFFSET = 30;
        /// Min logical offset of a queue (protocol.md §2.10).
        GET_MIN_OFFSET = 31;
        /// Store time of the oldest message of a queue (protocol.md §2.10).
        GET_EARLIEST_MSG_STORETIME = 32;
        /// One stored record by CommitLog physical offset (protocol.md §2.11).
        VIEW_MESSAGE_BY_ID = 33;
        /// Client heartbeat; the body is HeartbeatData JSON (protocol.md §2.6).
        HEART_BEAT = 34;
        /// Client shutdown (protocol.md §2.7).
        UNREGISTER_CLIENT = 35;
        /// Consumer returns a message it failed to consume (protocol.md §2.12).
        CONSUMER_SEND_MSG_BACK = 36;
        /// Producer commits or rolls back a transactional message.
        END_TRANSACTION = 37;
        /// Client ids of a consumer group (protocol.md §2.8).
        GET_CONSUMER_LIST_BY_GROUP = 38;
        /// Broker → producer, oneway: ask for a transaction's state.
        CHECK_TRANSACTION_STATE = 39;
        /// Broker → consumer, oneway: the group's membership changed (protocol.md §2.9).
        NOTIFY_CONSUMER_IDS_CHANGED = 40;
        /// Lock queues for orderly consumption (protocol.md §2.13).
        LOCK_BATCH_MQ = 41;
        /// Release queue locks (protocol.md §2.13).
        UNLOCK_BATCH_MQ = 42;
        /// Slave → master: consumerOffset.json.
        GET_ALL_CONSUMER_OFFSET = 43;
        /// Slave → master: delayOffset.json.
        GET_ALL_DELAY_OFFSET = 45;
        /// Broker → name server: registration and keep-alive (protocol.md §2.14).
        REGISTER_BROKER = 103;
        /// Broker → name server: deregistration (protocol.md §2.14).
        UNREGISTER_BROKER = 104;
        /// Client → name server: route of one topic (protocol.md §2.14).
        GET_ROUTEINFO_BY_TOPIC = 105;
        /// Admin → name server: cluster table (protocol.md §2.14).
        GET_BROKER_CLUSTER_INFO = 106;
        /// Admin: create or update a subscription group.
        UPDATE_AND_CREATE_SUBSCRIPTIONGROUP = 200;
        /// Slave → master: every subscription group config.
        GET_ALL_SUBSCRIPTIONGROUP_CONFIG = 201;
        /// Admin: per-queue statistics of a topic.
        GET_TOPIC_STATS_INFO = 202;
        /// Admin: connections of a consumer group (protocol.md §2.15).
        GET_CONSUMER_CONNECTION_LIST = 203;
        /// Admin: connections of a producer group.
        GET_PRODUCER_CONNECTION_LIST = 204;
        /// Admin → name server: every topic name (protocol.md §2.14).
        GET_ALL_TOPIC_LIST_FROM_NAMESERVER = 206;
        /// Admin: delete a subscription group.
        DELETE_SUBSCRIPTIONGROUP = 207;
        /// Admin: consumption progress of a group (protocol.md §2.15).
        GET_CONSUME_STATS = 208;
        /// Admin: delete a topic from a broker.
        DELETE_TOPIC_IN_BROKER = 215;
        /// Admin: delete a topic from a name server.
        DELETE_TOPIC_IN_NAMESRV = 216;
        /// Broker → client: reset the consumer's offsets.
        RESET_CONSUMER_CLIENT_OFFSET = 220;
        /// Broker → client: the consumer's offsets.
        GET_CONSUMER_STATUS_FROM_CLIENT = 221;
        /// Admin → broker: reset a group's offsets to a timestamp.
        INVOKE_BROKER_TO_RESET_OFFSET = 222;
        /// Admin → broker: consumer status of a group.
        INVOKE_BROKER_TO_GET_CONSUMER_STATUS = 223;
        /// Admin → name server: topics of a cluster.
        GET_TOPICS_BY_CLUSTER = 224;
        /// Admin: groups that consume a topic.
        QUERY_TOPIC_CONSUME_BY_WHO = 300;
        /// Admin: time span of a group's consumption.
        QUERY_CONSUME_TIME_SPAN = 303;
        /// Admin → name server: system topics.
        GET_SYSTEM_TOPIC_LIST_FROM_NS = 304;
        /// Admin → broker → client: consumer runtime information.
        GET_CONSUMER_RUNNING_INFO = 307;
        /// Broker → client: consume one message directly.
        CONSUME_MESSAGE_DIRECTLY = 309;
        /// Send one message, short header field names `a`…`n` (Java default, protocol.md §2.3).
        SEND_MESSAGE_V2 = 310;
        /// Send a batch of messages (protocol.md §2.3).
        SEND_BATCH_MESSAGE = 320;
        /// Request-reply: reply message, long names.
        SEND_REPLY_MESSAGE = 324;
        /// Request-reply: reply message, short names.
        SEND_REPLY_MESSAGE_V2 = 325;
        /// Broker → client: push a reply message.
        PUSH_REPLY_MESSAGE_TO_CLIENT = 326;
        /// Admin: one topic's config.
        GET_TOPIC_CONFIG = 351;
        /// Pull from DefaultLitePullConsumer; same header and handler as `PULL_MESSAGE`.
        LITE_PULL_MESSAGE = 361;
        /// Queue assignment computed by the broker (5.x).
        QUERY_ASSIGNMENT = 400;
        /// POP consumption (5.x); too large for the binary header's int16 code.
        POP_MESSAGE = 200050;
        /// POP acknowledgement (5.x).
        ACK_MESSAGE = 200051;
        /// POP invisibility change (5.x).
        CHANGE_MESSAGE_INVISIBLETIME = 200053;
    }
}

/// Response codes (`RemotingSysResponseCode` + `ResponseCode`): the outcome of a request.
/// protocol.md §2.1.
pub mod response_code {
    code_table! {
        /// The request succeeded.
        SUCCESS = 0;
        /// Uncaught error while processing; the remark carries the text.
        SYSTEM_ERROR = 1;
        /// Flow control: the request was rejected before processing.
        SYSTEM_BUSY = 2;
        /// Unknown request code.
        REQUEST_CODE_NOT_SUPPORTED = 3;
        /// A transaction operation failed.
        TRANSACTION_FAILED = 4;
        /// Stored, but the flush to disk timed out (send: not an error for the client).
        FLUSH_DISK_TIMEOUT = 10;
        /// Stored, but no slave is available (send: not an error for the client).
        SLAVE_NOT_AVAILABLE = 11;
        /// Stored, but replication to the slave timed out (send: not an error for the client).
        FLUSH_SLAVE_TIMEOUT = 12;
        /// The message is malformed or too large.
        MESSAGE_ILLEGAL = 13;
        /// The store cannot serve the request now.
        SERVICE_NOT_AVAILABLE = 14;
        /// The requester's version is not supported.
        VERSION_NOT_SUPPORTED = 15;
        /// The broker or topic forbids this operation.
        NO_PERMISSION = 16;
        /// The topic does not exist (and could not be auto-created).
        TOPIC_NOT_EXIST = 17;
        /// The topic already exists.
        TOPIC_EXIST_ALREADY = 18;
        /// Pull: no new message yet (client: NO_NEW_MSG).
        PULL_NOT_FOUND = 19;
        /// Pull: entries scanned but none matched (client: NO_MATCHED_MSG).
        PULL_RETRY_IMMEDIATELY = 20;
        /// Pull: the requested offset is illegal (client: OFFSET_ILLEGAL).
        PULL_OFFSET_MOVED = 21;
        /// Query: nothing found (e.g. no committed offset for the group).
        QUERY_NOT_FOUND = 22;
        /// Pull: the subscription expression does not parse.
        SUBSCRIPTION_PARSE_FAILED = 23;
        /// Pull: no subscription registered for this group and topic.
        SUBSCRIPTION_NOT_EXIST = 24;
        /// Pull: the registered subscription is older than the request's.
        SUBSCRIPTION_NOT_LATEST = 25;
        /// The subscription group does not exist.
        SUBSCRIPTION_GROUP_NOT_EXIST = 26;
        /// Filter-server data missing (legacy).
        FILTER_DATA_NOT_EXIST = 27;
        /// Filter-server data outdated (legacy).
        FILTER_DATA_NOT_LATEST = 28;
        /// A request field is out of range or malformed.
        INVALID_PARAMETER = 29;
        /// Transaction check answer: commit.
        TRANSACTION_SHOULD_COMMIT = 200;
        /// Transaction check answer: roll back.
        TRANSACTION_SHOULD_ROLLBACK = 201;
        /// Transaction check answer: unknown (sic, Java spelling).
        TRANSACTION_STATE_UNKNOW = 202;
        /// Transaction check answer: wrong producer group.
        TRANSACTION_STATE_GROUP_WRONG = 203;
        /// Unit-mode routing failure.
        NO_BUYER_ID = 204;
        /// Unit-mode routing failure.
        NOT_IN_CURRENT_UNIT = 205;
        /// The consumer group has no online client.
        CONSUMER_NOT_ONLINE = 206;
        /// Direct consumption timed out.
        CONSUME_MSG_TIMEOUT = 207;
        /// No message (POP, query).
        NO_MESSAGE = 208;
        /// POP: too many held requests.
        POLLING_FULL = 209;
        /// POP: held request timed out.
        POLLING_TIMEOUT = 210;
        /// The named broker does not exist.
        BROKER_NOT_EXIST = 211;
        /// The broker has not finished dispatching.
        BROKER_DISPATCH_NOT_COMPLETE = 212;
        /// The group consumes in broadcast mode.
        BROADCAST_CONSUMPTION = 213;
        /// Flow control on pull; the push consumer retries after 20 ms.
        FLOW_CONTROL = 215;
        /// Not the leader for this queue (controller mode).
        NOT_LEADER_FOR_QUEUE = 501;
        /// The operation is not allowed in this state.
        ILLEGAL_OPERATION = 604;
        /// Broker is shutting down; sent only to peers with version > V5_3_1.
        GO_AWAY = 1500;
        /// Client-internal only, never on the wire: unknown RPC failure.
        RPC_UNKNOWN = -1000;
        /// Client-internal only, never on the wire: no address for the target.
        RPC_ADDR_IS_NULL = -1002;
        /// Client-internal only, never on the wire: writing to the channel failed.
        RPC_SEND_TO_CHANNEL_FAILED = -1004;
        /// Client-internal only, never on the wire: the RPC timed out.
        RPC_TIME_OUT = -1006;
    }
}

#[cfg(test)]
mod tests {
    use super::{request_code, response_code};

    #[test]
    fn request_codes_match_protocol_md_table() {
        // Pairs copied from protocol.md §2.2, not from the table above.
        let spec = [
            (10, "SEND_MESSAGE"),
            (11, "PULL_MESSAGE"),
            (34, "HEART_BEAT"),
            (105, "GET_ROUTEINFO_BY_TOPIC"),
            (310, "SEND_MESSAGE_V2"),
            (320, "SEND_BATCH_MESSAGE"),
            (361, "LITE_PULL_MESSAGE"),
            (200053, "CHANGE_MESSAGE_INVISIBLETIME"),
        ];
        for (code, name) in spec {
            assert_eq!(request_code::name(code), Some(name), "code {code}");
        }
    }

    #[test]
    fn response_codes_match_protocol_md_table() {
        // Pairs copied from protocol.md §2.1, not from the table above.
        let spec = [
            (0, "SUCCESS"),
            (3, "REQUEST_CODE_NOT_SUPPORTED"),
            (19, "PULL_NOT_FOUND"),
            (22, "QUERY_NOT_FOUND"),
            (206, "CONSUMER_NOT_ONLINE"),
            (215, "FLOW_CONTROL"),
            (1500, "GO_AWAY"),
        ];
        for (code, name) in spec {
            assert_eq!(response_code::name(code), Some(name), "code {code}");
        }
    }

    #[test]
    fn all_lists_each_code_once_with_its_name() {
        for table in [request_code::ALL, response_code::ALL] {
            let mut codes: Vec<i32> = table.iter().map(|&(code, _)| code).collect();
            codes.sort_unstable();
            codes.dedup();
            assert_eq!(codes.len(), table.len());
        }
        for &(code, name) in request_code::ALL {
            assert_eq!(request_code::name(code), Some(name));
        }
    }

    #[test]
    fn unknown_codes_have_no_name() {
        assert_eq!(request_code::name(9999), None);
        assert_eq!(response_code::name(9999), None);
    }

    #[test]
    fn request_and_response_tables_are_separate_namespaces() {
        assert_eq!(request_code::name(215), Some("DELETE_TOPIC_IN_BROKER"));
        assert_eq!(response_code::name(215), Some("FLOW_CONTROL"));
    }
}
