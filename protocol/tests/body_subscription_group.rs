//! Consumer-group configs (subscriptionGroup.json, GET_ALL_SUBSCRIPTIONGROUP_CONFIG).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ringmq_protocol::body::{JsonBody, SubscriptionGroupConfig, SubscriptionGroupWrapper};

#[test]
fn missing_fields_take_java_defaults() {
    let wrapper = SubscriptionGroupWrapper::decode(
        b"{\n\t\"subscriptionGroupTable\":{\n\t\t\"cg\":{\"groupName\":\"cg\",\"retryMaxTimes\":3}\n\t},\n\t\"dataVersion\":{\"counter\":1,\"timestamp\":5}\n}",
    )
    .unwrap();
    let group = &wrapper.subscription_group_table["cg"];
    assert_eq!(group.retry_max_times, 3);
    assert_eq!(
        *group,
        SubscriptionGroupConfig {
            retry_max_times: 3,
            ..SubscriptionGroupConfig::new("cg")
        }
    );
    assert!(group.consume_enable && group.consume_broadcast_enable);
    assert_eq!(group.retry_queue_nums, 1);
    assert_eq!(group.which_broker_when_consume_slowly, 1);
    assert_eq!(group.consume_timeout_minute, 15);
}

#[test]
fn opaque_5x_fields_round_trip() {
    let body = br#"{"subscriptionGroupTable":{"cg":{"groupName":"cg","groupRetryPolicy":{"type":"CUSTOMIZED","customizedRetryPolicy":{"maxDelayLevel":3}},"subscriptionDataSet":null}},"forbiddenTable":{"cg":{"T":1}},"dataVersion":{"counter":2,"stateVersion":0,"timestamp":9}}"#;
    let wrapper = SubscriptionGroupWrapper::decode(body).unwrap();
    let group = &wrapper.subscription_group_table["cg"];
    assert_eq!(
        group.group_retry_policy.as_ref().unwrap()["type"],
        "CUSTOMIZED"
    );
    assert_eq!(group.subscription_data_set, None);
    assert_eq!(wrapper.forbidden_table["cg"]["T"], 1);
    assert_eq!(
        SubscriptionGroupWrapper::decode(&wrapper.encode().unwrap()).unwrap(),
        wrapper
    );
}
