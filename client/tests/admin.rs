//! Admin calls (what the `ringmq` CLI uses) against a real ringmq-server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use ringmq_client::admin::TopicSpec;
use ringmq_client::core::now_ms;
use ringmq_client::{
    Admin, ClientError, ConsumeStatus, Message, MessageExt, Producer, ProducerConfig, PushConsumer,
    PushConsumerConfig,
};

async fn cluster_of(admin: &Admin) -> String {
    let info = admin.cluster_info().await.unwrap();
    assert_eq!(info.cluster_addr_table.len(), 1, "{info:?}");
    info.cluster_addr_table.keys().next().unwrap().clone()
}

async fn wait_route(admin: &Admin, topic: &str, present: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while admin.topic_route(topic).await.is_ok() != present {
        assert!(
            Instant::now() < deadline,
            "route of {topic} present={present} never seen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_list_route_and_delete_a_topic() {
    let broker = support::start_broker(&[]);
    let admin = Admin::connect(&broker.namesrv_addr.unwrap().to_string());
    let cluster = cluster_of(&admin).await;
    let created = admin
        .create_topic(&cluster, &TopicSpec::new("AdminTopic", 6))
        .await
        .unwrap();
    assert_eq!(created.len(), 1);
    wait_route(&admin, "AdminTopic", true).await;
    let route = admin.topic_route("AdminTopic").await.unwrap();
    assert_eq!(route.queue_datas.len(), 1);
    assert_eq!(route.queue_datas[0].read_queue_nums, 6);
    assert_eq!(route.queue_datas[0].write_queue_nums, 6);
    assert_eq!(
        route.broker_datas[0].master_addr(),
        Some(broker.broker_addr.to_string().as_str())
    );
    assert!(admin
        .topic_list()
        .await
        .unwrap()
        .contains(&"AdminTopic".to_owned()));
    assert_eq!(admin.topic_queues("AdminTopic").await.unwrap().len(), 6);

    admin.delete_topic(&cluster, "AdminTopic").await.unwrap();
    wait_route(&admin, "AdminTopic", false).await;
    assert!(matches!(
        admin.topic_route("AdminTopic").await,
        Err(ClientError::NoRoute { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_runtime_info_has_the_keys_mqadmin_reads() {
    let broker = support::start_broker(&[]);
    let admin = Admin::connect(&broker.namesrv_addr.unwrap().to_string());
    let table = admin
        .broker_runtime_info(&broker.broker_addr.to_string())
        .await
        .unwrap();
    for key in [
        "msgPutTotalTodayNow",
        "msgGetTotalTodayNow",
        "brokerVersionDesc",
    ] {
        assert!(table.contains_key(key), "{key} missing from {table:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_offsets_min_max_and_search_by_time() {
    let broker = support::start_broker(&[]);
    let ns = broker.namesrv_addr.unwrap().to_string();
    let admin = Admin::connect(&ns);
    let cluster = cluster_of(&admin).await;
    admin
        .create_topic(&cluster, &TopicSpec::new("Offsets", 1))
        .await
        .unwrap();
    wait_route(&admin, "Offsets", true).await;
    let producer = Producer::start(ProducerConfig::new(&ns, "offset-producers"))
        .await
        .unwrap();
    for i in 0..3 {
        producer
            .send(Message::new("Offsets", format!("{i}")))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let middle_ms = now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    for i in 3..5 {
        producer
            .send(Message::new("Offsets", format!("{i}")))
            .await
            .unwrap();
    }
    let mq = admin.topic_queues("Offsets").await.unwrap().remove(0);
    assert_eq!(admin.min_offset(&mq).await.unwrap(), 0);
    assert_eq!(admin.max_offset(&mq).await.unwrap(), 5);
    assert_eq!(admin.search_offset(&mq, middle_ms).await.unwrap(), 3);
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_connection_lists_an_online_push_consumer() {
    let broker = support::start_broker(&[]);
    let ns = broker.namesrv_addr.unwrap().to_string();
    let admin = Admin::connect(&ns);
    let cluster = cluster_of(&admin).await;
    admin
        .create_topic(&cluster, &TopicSpec::new("Watched", 2))
        .await
        .unwrap();
    wait_route(&admin, "Watched", true).await;
    let consumer = PushConsumer::new(
        PushConsumerConfig::new(&ns, "watched-group"),
        |_: &[MessageExt]| ConsumeStatus::Success,
    );
    consumer.subscribe("Watched", "TagA").unwrap();
    consumer.start().await.unwrap();
    let conn = admin
        .consumer_connection("watched-group", Some("Watched"))
        .await
        .unwrap();
    assert_eq!(conn.connection_set.len(), 1);
    assert_eq!(conn.connection_set[0].client_id, consumer.client_id());
    assert_eq!(conn.subscription_table["Watched"].sub_string, "TagA");
    assert!(conn.subscription_table.contains_key("%RETRY%watched-group"));
    consumer.shutdown().await;
    // Shutdown unregistered the member: the group is no longer online.
    match admin
        .consumer_connection("watched-group", Some("Watched"))
        .await
    {
        Err(e) => assert_eq!(e.broker_code(), Some(206), "{e:?}"),
        Ok(conn) => assert!(conn.connection_set.is_empty(), "{conn:?}"),
    }
}
