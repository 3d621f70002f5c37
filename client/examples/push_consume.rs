//! A push-consumer group member:
//! `cargo run -p ringmq-client --example push_consume -- 127.0.0.1:9876 TopicTest my-group [first|last]`.
//!
//! Prints `READY <clientId>` once started, then one line per message:
//! `RECV <unix ms> <queue id> <reconsume times> <msgId>`. Shuts down gracefully (commits its
//! offsets, unregisters) when its standard input closes. The client's SIGKILL takeover test
//! runs several of these as separate processes.

use std::io::Write;

use ringmq_client::core::now_ms;
use ringmq_client::{ConsumeFrom, ConsumeStatus, MessageExt, PushConsumer, PushConsumerConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let namesrv = args.next().unwrap_or_else(|| "127.0.0.1:9876".to_owned());
    let topic = args.next().unwrap_or_else(|| "TopicTest".to_owned());
    let group = args
        .next()
        .unwrap_or_else(|| "example-consumers".to_owned());
    let from = match args.next().as_deref() {
        Some("first") => ConsumeFrom::FirstOffset,
        _ => ConsumeFrom::LastOffset,
    };

    let mut config = PushConsumerConfig::new(&namesrv, group);
    config.consume_from = from;
    let consumer = PushConsumer::new(config, |msgs: &[MessageExt]| {
        let mut out = std::io::stdout().lock();
        for m in msgs {
            let _ = writeln!(
                out,
                "RECV {} {} {} {}",
                now_ms(),
                m.queue_id,
                m.reconsume_times,
                m.msg_id()
            );
        }
        let _ = out.flush();
        ConsumeStatus::Success
    });
    consumer.subscribe(&topic, "*")?;
    consumer.start().await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "READY {}", consumer.client_id())?;
        out.flush()?;
    }
    // Run until stdin closes.
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    })
    .await?;
    consumer.shutdown().await;
    Ok(())
}
