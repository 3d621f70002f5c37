//! Polls a topic with the lite-pull consumer:
//! `cargo run -p ringmq-client --example lite_pull -- 127.0.0.1:9876 TopicTest my-group 5`
//! (stops after the given number of seconds).

use std::time::{Duration, Instant};

use ringmq_client::{ConsumeFrom, LitePullConfig, LitePullConsumer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let namesrv = args.next().unwrap_or_else(|| "127.0.0.1:9876".to_owned());
    let topic = args.next().unwrap_or_else(|| "TopicTest".to_owned());
    let group = args.next().unwrap_or_else(|| "example-pullers".to_owned());
    let seconds: u64 = args.next().map(|n| n.parse()).transpose()?.unwrap_or(5);

    let mut config = LitePullConfig::new(&namesrv, group);
    config.consume_from = ConsumeFrom::FirstOffset;
    let consumer = LitePullConsumer::new(config);
    consumer.subscribe(&topic, "*")?;
    consumer.start().await?;
    let until = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < until {
        for m in consumer.poll(Duration::from_millis(500)).await {
            println!(
                "{} queue={} offset={} body={}",
                m.msg_id(),
                m.queue_id,
                m.queue_offset,
                String::from_utf8_lossy(&m.body)
            );
        }
    }
    consumer.commit_sync().await;
    consumer.shutdown().await;
    Ok(())
}
