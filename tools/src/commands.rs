//! The commands' bodies: each builds its result through `ringmq_client::Admin` (or a
//! producer), then prints it as a table or, with `--json`, as one JSON document on stdout.
//! Every failure carries a context naming what was being done (the client error under it
//! keeps the broker's address, code and remark).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context as _};
use ringmq_client::admin::{Admin, QueueProgress, ResetTarget, TopicSpec};
use ringmq_client::{ClientError, Message, Producer, ProducerConfig};
use serde_json::{json, Value};

use crate::output::{message_json, Out};
use crate::table::Table;
use crate::timefmt::{format_ms, now_ms, parse_time};
use crate::{
    BrokerCmd, Cli, ClusterCmd, Command, ConsumerCmd, DlqCmd, MessageCmd, OffsetCmd, SendArgs,
    TopicCmd, TopicSpecArgs,
};

/// Runs one command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let admin = Admin::connect(&cli.namesrv);
    let out = Out::new(cli.json);
    let result = dispatch(&admin, &cli.namesrv, out, cli.command).await;
    admin.shutdown().await;
    result
}

async fn dispatch(admin: &Admin, namesrv: &str, out: Out, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Topic(TopicCmd::Create(spec)) => topic_create(admin, out, &spec, false).await,
        Command::Topic(TopicCmd::Update(spec)) => topic_create(admin, out, &spec, true).await,
        Command::Topic(TopicCmd::Delete { topic, cluster }) => {
            topic_delete(admin, out, &topic, cluster).await
        }
        Command::Topic(TopicCmd::List) => topic_list(admin, out).await,
        Command::Topic(TopicCmd::Route { topic }) => topic_route(admin, out, &topic).await,
        Command::Cluster(ClusterCmd::List) => cluster_list(admin, out).await,
        Command::Broker(BrokerCmd::Stats { broker }) => broker_stats(admin, out, broker).await,
        Command::Consumer(ConsumerCmd::Progress { group, topic }) => {
            consumer_progress(admin, out, &group, topic.as_deref()).await
        }
        Command::Consumer(ConsumerCmd::Connections { group, topic }) => {
            consumer_connections(admin, out, &group, topic.as_deref()).await
        }
        Command::Offset(OffsetCmd::Reset {
            group,
            topic,
            to_time,
            to_offset,
            queue,
        }) => {
            let target = match (to_time, to_offset) {
                (_, Some(offset)) => ResetTarget::Offset(offset),
                (Some(time), None) => {
                    ResetTarget::Timestamp(parse_time(&time, now_ms()).map_err(anyhow::Error::msg)?)
                }
                (None, None) => bail!("give --to-time or --to-offset"),
            };
            offset_reset(admin, out, &group, &topic, target, queue).await
        }
        Command::Send(args) => send(namesrv, out, &args).await,
        Command::Consume(args) => crate::consume::consume(admin, out, &args).await,
        Command::Message(MessageCmd::View { msg_id }) => message_view(admin, out, &msg_id).await,
        Command::Dlq(DlqCmd::List { group, wait_ms }) => {
            crate::dlq::list(admin, out, &group, Duration::from_millis(wait_ms.max(1))).await
        }
        Command::Dlq(DlqCmd::Resend {
            group,
            msg_id,
            wait_ms,
        }) => {
            let wait = Duration::from_millis(wait_ms.max(1));
            crate::dlq::resend(admin, namesrv, out, &group, msg_id.as_deref(), wait).await
        }
    }
}

/// `(broker name, master address)` of the brokers a topic command applies to.
async fn target_brokers(
    admin: &Admin,
    cluster: Option<&str>,
    broker: Option<&str>,
) -> anyhow::Result<Vec<(String, String)>> {
    if let Some(addr) = broker {
        return Ok(vec![(addr.to_owned(), addr.to_owned())]);
    }
    let info = admin
        .cluster_info()
        .await
        .context("reading the cluster list")?;
    let clusters: Vec<String> = match cluster {
        Some(c) => vec![c.to_owned()],
        None => info.cluster_addr_table.keys().cloned().collect(),
    };
    let mut out = Vec::new();
    for c in clusters {
        let masters = admin
            .cluster_masters(&c)
            .await
            .with_context(|| format!("finding the masters of cluster {c}"))?;
        out.extend(masters);
    }
    if out.is_empty() {
        bail!("no master broker found (is a broker registered with the name server?)");
    }
    Ok(out)
}

async fn topic_create(
    admin: &Admin,
    out: Out,
    args: &TopicSpecArgs,
    update: bool,
) -> anyhow::Result<()> {
    let current = if update {
        match admin.topic_route(&args.topic).await {
            Ok(route) => route.queue_datas.first().cloned(),
            Err(ClientError::NoRoute { .. }) => {
                bail!("topic {} does not exist; use `topic create`", args.topic)
            }
            Err(e) => return Err(anyhow::Error::new(e).context("reading the topic's route")),
        }
    } else {
        None
    };
    let queues = args.queues;
    let read = args
        .read_queues
        .or(queues)
        .or(current.as_ref().map(|q| q.read_queue_nums))
        .unwrap_or(8);
    let write = args
        .write_queues
        .or(queues)
        .or(current.as_ref().map(|q| q.write_queue_nums))
        .unwrap_or(8);
    let perm = args.perm.or(current.as_ref().map(|q| q.perm)).unwrap_or(6);
    let spec = TopicSpec {
        topic: args.topic.clone(),
        read_queue_nums: read,
        write_queue_nums: write,
        perm,
        order: args.order.unwrap_or(false),
    };
    let verb = if update { "updating" } else { "creating" };
    let mut done = Vec::new();
    for (name, addr) in
        target_brokers(admin, args.cluster.as_deref(), args.broker.as_deref()).await?
    {
        admin
            .create_topic_on_broker(&addr, &spec)
            .await
            .with_context(|| format!("{verb} topic {} on broker {name} ({addr})", spec.topic))?;
        done.push(json!({"broker": name, "addr": addr}));
    }
    let value = json!({
        "topic": spec.topic,
        "read_queues": read,
        "write_queues": write,
        "perm": perm,
        "order": spec.order,
        "brokers": done,
    });
    out.emit(&value, || {
        let mut t = Table::new(&["broker", "addr", "#read", "#write", "#perm"]);
        for b in &done {
            t.row([
                b["broker"].as_str().unwrap_or_default().to_owned(),
                b["addr"].as_str().unwrap_or_default().to_owned(),
                read.to_string(),
                write.to_string(),
                perm.to_string(),
            ]);
        }
        let word = if update { "updated" } else { "created" };
        format!(
            "topic {} {word} on {} broker(s)\n{}",
            spec.topic,
            done.len(),
            t.render()
        )
    })
}

async fn topic_delete(
    admin: &Admin,
    out: Out,
    topic: &str,
    cluster: Option<String>,
) -> anyhow::Result<()> {
    let clusters: Vec<String> = match cluster {
        Some(c) => vec![c],
        None => admin
            .cluster_info()
            .await
            .context("reading the cluster list")?
            .cluster_addr_table
            .into_keys()
            .collect(),
    };
    for c in &clusters {
        admin
            .delete_topic(c, topic)
            .await
            .with_context(|| format!("deleting topic {topic} from cluster {c}"))?;
    }
    out.emit(&json!({"topic": topic, "clusters": clusters}), || {
        format!(
            "topic {topic} deleted from cluster(s) {}\n",
            clusters.join(", ")
        )
    })
}

async fn topic_list(admin: &Admin, out: Out) -> anyhow::Result<()> {
    let mut topics = admin.topic_list().await.context("listing topics")?;
    topics.sort();
    out.emit(&json!(topics), || {
        topics.iter().map(|t| format!("{t}\n")).collect()
    })
}

async fn topic_route(admin: &Admin, out: Out, topic: &str) -> anyhow::Result<()> {
    let route = admin
        .topic_route(topic)
        .await
        .with_context(|| format!("reading the route of topic {topic}"))?;
    let value = serde_json::to_value(&route).context("encoding the route")?;
    out.emit(&value, || {
        let mut brokers = Table::new(&["cluster", "broker", "#id", "addr"]);
        for b in &route.broker_datas {
            for (id, addr) in &b.broker_addrs {
                brokers.row([
                    b.cluster.clone(),
                    b.broker_name.clone(),
                    id.to_string(),
                    addr.clone(),
                ]);
            }
        }
        let mut queues = Table::new(&["broker", "#read queues", "#write queues", "#perm"]);
        for q in &route.queue_datas {
            queues.row([
                q.broker_name.clone(),
                q.read_queue_nums.to_string(),
                q.write_queue_nums.to_string(),
                q.perm.to_string(),
            ]);
        }
        format!("{}\n{}", brokers.render(), queues.render())
    })
}

async fn cluster_list(admin: &Admin, out: Out) -> anyhow::Result<()> {
    let info = admin
        .cluster_info()
        .await
        .context("reading the cluster list")?;
    let mut rows = Vec::new();
    for (cluster, names) in &info.cluster_addr_table {
        for name in names {
            let Some(data) = info.broker_addr_table.get(name) else {
                continue;
            };
            for (id, addr) in &data.broker_addrs {
                // A broker that does not answer is still listed, without figures.
                let stats = admin.broker_runtime_info(addr).await;
                let get = |key: &str| -> String {
                    stats
                        .as_ref()
                        .ok()
                        .and_then(|s| s.get(key).cloned())
                        .unwrap_or_default()
                };
                rows.push(json!({
                    "cluster": cluster,
                    "broker": name,
                    "id": id,
                    "addr": addr,
                    "version": get("brokerVersionDesc"),
                    "put_tps": first_word(&get("putTps")),
                    "get_tps": first_word(&get("getTransferredTps")),
                    "put_today": get("msgPutTotalTodayNow"),
                    "get_today": get("msgGetTotalTodayNow"),
                    "error": stats.as_ref().err().map(ToString::to_string),
                }));
            }
        }
    }
    out.emit(&json!(rows), || {
        let mut t = Table::new(&[
            "cluster",
            "broker",
            "#id",
            "addr",
            "version",
            "#put tps",
            "#get tps",
            "#put today",
            "#get today",
        ]);
        for r in &rows {
            let s = |k: &str| plain(&r[k]);
            t.row([
                s("cluster"),
                s("broker"),
                s("id"),
                s("addr"),
                s("version"),
                s("put_tps"),
                s("get_tps"),
                s("put_today"),
                s("get_today"),
            ]);
        }
        t.render()
    })
}

/// RocketMQ's TPS values list several windows (`"12.3 11.0 10.9"`); the first is the latest.
fn first_word(s: &str) -> String {
    s.split_whitespace().next().unwrap_or_default().to_owned()
}

async fn broker_stats(admin: &Admin, out: Out, broker: Option<String>) -> anyhow::Result<()> {
    let addrs: Vec<String> = match broker {
        Some(addr) => vec![addr],
        None => {
            let info = admin
                .cluster_info()
                .await
                .context("reading the cluster list")?;
            let mut addrs: Vec<String> = info
                .broker_addr_table
                .values()
                .flat_map(|b| b.broker_addrs.values().cloned())
                .collect();
            addrs.sort();
            addrs.dedup();
            if addrs.is_empty() {
                bail!("the name server knows no broker");
            }
            addrs
        }
    };
    let mut all = BTreeMap::new();
    for addr in addrs {
        let stats = admin
            .broker_runtime_info(&addr)
            .await
            .with_context(|| format!("reading runtime info of broker {addr}"))?;
        all.insert(addr, stats);
    }
    out.emit(&json!(all), || {
        let mut text = String::new();
        for (addr, stats) in &all {
            text.push_str(&format!("broker {addr}\n"));
            let mut t = Table::new(&["key", "value"]);
            for (k, v) in stats {
                t.row([k.clone(), v.clone()]);
            }
            text.push_str(&t.render());
        }
        text
    })
}

fn progress_json(p: &QueueProgress) -> Value {
    json!({
        "topic": p.queue.topic,
        "broker": p.queue.broker_name,
        "queue": p.queue.queue_id,
        "broker_offset": p.broker_offset,
        "consumer_offset": p.consumer_offset,
        "lag": p.lag(),
        "last_timestamp": p.last_timestamp,
    })
}

async fn consumer_progress(
    admin: &Admin,
    out: Out,
    group: &str,
    topic: Option<&str>,
) -> anyhow::Result<()> {
    let mut queues = admin
        .consume_progress(group, topic)
        .await
        .with_context(|| format!("reading the progress of group {group}"))?;
    // Largest lag first, then by queue (the client sorts the same way; keep it explicit).
    queues.sort_by(|a, b| b.lag().cmp(&a.lag()).then_with(|| a.queue.cmp(&b.queue)));
    let total_lag: i64 = queues.iter().map(QueueProgress::lag).sum();
    let total_broker: i64 = queues.iter().map(|q| q.broker_offset).sum();
    let total_consumer: i64 = queues.iter().map(|q| q.consumer_offset).sum();
    let value = json!({
        "group": group,
        "queues": queues.iter().map(progress_json).collect::<Vec<_>>(),
        "total_broker_offset": total_broker,
        "total_consumer_offset": total_consumer,
        "total_lag": total_lag,
    });
    out.emit(&value, || {
        let mut t = Table::new(&[
            "topic",
            "broker",
            "#queue",
            "#broker offset",
            "#consumer offset",
            "#lag",
            "last consumed (UTC)",
        ]);
        for q in &queues {
            t.row([
                q.queue.topic.clone(),
                q.queue.broker_name.clone(),
                q.queue.queue_id.to_string(),
                q.broker_offset.to_string(),
                q.consumer_offset.to_string(),
                q.lag().to_string(),
                format_ms(q.last_timestamp),
            ]);
        }
        t.row([
            "total".to_owned(),
            String::new(),
            String::new(),
            total_broker.to_string(),
            total_consumer.to_string(),
            total_lag.to_string(),
            String::new(),
        ]);
        t.render()
    })
}

async fn consumer_connections(
    admin: &Admin,
    out: Out,
    group: &str,
    topic: Option<&str>,
) -> anyhow::Result<()> {
    let conn = admin
        .consumer_connection(group, topic)
        .await
        .with_context(|| format!("reading the connections of group {group}"))?;
    let value = serde_json::to_value(&conn).context("encoding connections")?;
    out.emit(&value, || {
        let mut clients = Table::new(&["client id", "addr", "language", "#version"]);
        for c in &conn.connection_set {
            clients.row([
                c.client_id.clone(),
                c.client_addr.clone(),
                c.language.clone(),
                c.version.to_string(),
            ]);
        }
        let mut subs = Table::new(&["topic", "expression", "#version"]);
        for (topic, s) in &conn.subscription_table {
            subs.row([
                topic.clone(),
                s.sub_string.clone(),
                s.sub_version.to_string(),
            ]);
        }
        format!(
            "{}\n{}\nconsume type {}, model {}, from {}\n",
            clients.render(),
            subs.render(),
            plain(&json!(conn.consume_type)),
            plain(&json!(conn.message_model)),
            plain(&json!(conn.consume_from_where)),
        )
    })
}

/// A JSON scalar as table text: strings without quotes, null as nothing.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

async fn offset_reset(
    admin: &Admin,
    out: Out,
    group: &str,
    topic: &str,
    target: ResetTarget,
    queue: Option<i32>,
) -> anyhow::Result<()> {
    let done = admin
        .reset_offset(group, topic, target, queue)
        .await
        .with_context(|| format!("resetting the offsets of group {group} on topic {topic}"))?;
    let value = json!(done
        .iter()
        .map(
            |(mq, offset)| json!({"broker": mq.broker_name, "queue": mq.queue_id, "offset": offset})
        )
        .collect::<Vec<_>>());
    out.emit(&value, || {
        let mut t = Table::new(&["broker", "#queue", "#new offset"]);
        for (mq, offset) in &done {
            t.row([
                mq.broker_name.clone(),
                mq.queue_id.to_string(),
                offset.to_string(),
            ]);
        }
        format!("group {group} on topic {topic}:\n{}", t.render())
    })
}

async fn send(namesrv: &str, out: Out, args: &SendArgs) -> anyhow::Result<()> {
    let producer = Producer::start(ProducerConfig::new(namesrv, args.group.clone()))
        .await
        .context("starting the producer")?;
    let mut results = Vec::new();
    let mut failure = None;
    for i in 0..args.count {
        let mut msg = Message::new(args.topic.clone(), args.body.clone().into_bytes());
        if let Some(tag) = &args.tag {
            msg = msg.with_tags(tag.clone());
        }
        if !args.key.is_empty() {
            msg = msg.with_keys(args.key.iter().cloned());
        }
        match producer.send(msg).await {
            Ok(r) => results.push(json!({
                "status": format!("{:?}", r.status),
                "msg_id": r.msg_id,
                "offset_msg_id": r.offset_msg_id,
                "broker": r.queue.broker_name,
                "queue": r.queue.queue_id,
                "queue_offset": r.queue_offset,
            })),
            Err(e) => {
                failure = Some(anyhow::Error::new(e).context(format!(
                    "sending message {} of {} to topic {}",
                    i + 1,
                    args.count,
                    args.topic
                )));
                break;
            }
        }
    }
    producer.shutdown().await;
    // What was sent before a failure is still printed.
    out.emit(&json!(results), || {
        let mut t = Table::new(&[
            "status",
            "msg id",
            "offset msg id",
            "broker",
            "#queue",
            "#queue offset",
        ]);
        for r in &results {
            let s = |k: &str| plain(&r[k]);
            t.row([
                s("status"),
                s("msg_id"),
                s("offset_msg_id"),
                s("broker"),
                s("queue"),
                s("queue_offset"),
            ]);
        }
        t.render()
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn message_view(admin: &Admin, out: Out, msg_id: &str) -> anyhow::Result<()> {
    let m = admin
        .view_message(msg_id)
        .await
        .with_context(|| format!("viewing message {msg_id}"))?;
    out.emit(&message_json(&m), || {
        let mut t = Table::new(&["field", "value"]);
        let rows: Vec<(&str, String)> = vec![
            ("topic", m.topic.clone()),
            ("queue", m.queue_id.to_string()),
            ("queue offset", m.queue_offset.to_string()),
            ("msg id", m.msg_id().to_owned()),
            ("offset msg id", m.offset_msg_id.clone()),
            ("tags", m.tags().unwrap_or_default().to_owned()),
            ("keys", m.keys().join(" ")),
            (
                "born",
                format!("{} from {}", format_ms(m.born_timestamp), m.born_host),
            ),
            (
                "stored",
                format!("{} on {}", format_ms(m.store_timestamp), m.store_host),
            ),
            ("reconsume times", m.reconsume_times.to_string()),
            ("body bytes", m.body.len().to_string()),
        ];
        for (k, v) in rows {
            t.row([k.to_owned(), v]);
        }
        for (k, v) in m.properties.iter() {
            t.row([format!("property {k}"), v.to_owned()]);
        }
        format!(
            "{}body:\n{}\n",
            t.render(),
            String::from_utf8_lossy(&m.body)
        )
    })
}
