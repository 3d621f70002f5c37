//! Sends messages: `cargo run -p ringmq-client --example produce -- 127.0.0.1:9876 TopicTest 10`.
//! Prints one line per send result.

use ringmq_client::{Message, Producer, ProducerConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let namesrv = args.next().unwrap_or_else(|| "127.0.0.1:9876".to_owned());
    let topic = args.next().unwrap_or_else(|| "TopicTest".to_owned());
    let count: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(10);

    let producer = Producer::start(ProducerConfig::new(&namesrv, "example-producers")).await?;
    for i in 0..count {
        let msg = Message::new(topic.clone(), format!("hello {i}"))
            .with_tags("TagA")
            .with_keys([format!("key-{i}")]);
        let result = producer.send(msg).await?;
        println!(
            "{:?} msgId={} offsetMsgId={} queue={}:{} offset={}",
            result.status,
            result.msg_id,
            result.offset_msg_id,
            result.queue.broker_name,
            result.queue.queue_id,
            result.queue_offset
        );
    }
    producer.shutdown().await;
    Ok(())
}
