//! The master's side: accept HA connections, check each slave's hello against the shard it
//! names, and stream that shard's log to it.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use compio::io::{AsyncReadExt, AsyncWriteExt};
use compio::net::{TcpListener, TcpStream};
use compio::BufResult;
use futures_util::future::{select, Either};
use ringmq_engine::error::ErrorChain;
use ringmq_engine::store::DEFAULT_FRAME_BYTES;

use super::wire::{self, Hello, ACK_BYTES, HELLO_BYTES};
use super::{HEARTBEAT_INTERVAL, IDLE_TIMEOUT};
use crate::shard::{BrokerShared, Shard};
use crate::shutdown::Shutdown;

/// Accepts HA connections (on shard 0) until shutdown; each is handed to the shard its
/// hello names.
pub async fn accept_loop(
    listener: TcpListener,
    shard: Rc<Shard>,
    shared: Arc<BrokerShared>,
    shutdown: Arc<Shutdown>,
) {
    loop {
        let accept = std::pin::pin!(listener.accept());
        let stop = std::pin::pin!(wait_shutdown(&shutdown));
        match select(accept, stop).await {
            Either::Left((Ok((stream, peer)), _)) => {
                let (shard, shared) = (Rc::clone(&shard), Arc::clone(&shared));
                compio::runtime::spawn(async move {
                    if let Err(reason) = hand_over(stream, peer, shard, shared).await {
                        tracing::warn!(%peer, %reason, "HA connection closed before replication began");
                    }
                })
                .detach();
            }
            Either::Left((Err(error), _)) => {
                tracing::warn!(%error, "HA accept failed");
                compio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Either::Right(((), _)) => return,
        }
    }
}

async fn wait_shutdown(shutdown: &Shutdown) {
    // The shard's accept loop owns the shutdown waker of shard 0; poll the flag instead.
    while !shutdown.is_requested() {
        compio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Reads the hello, then serves the connection on the shard it names.
async fn hand_over(
    mut stream: TcpStream,
    peer: SocketAddr,
    shard: Rc<Shard>,
    shared: Arc<BrokerShared>,
) -> Result<(), String> {
    // Frames go out as a small header then the records: without this Nagle holds the
    // records until the slave's delayed ACK, and a SYNC_MASTER's sends wait for them.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "set_nodelay failed");
    }
    let hello = compio::time::timeout(IDLE_TIMEOUT, read_hello(&mut stream))
        .await
        .map_err(|_| "no hello within 20 s".to_owned())?
        .map_err(|e| format!("reading the hello: {e}"))?;
    let Some(hello) = hello else {
        return Err("not a ringmq replication hello".to_owned());
    };
    let owner = usize::from(hello.shard_id);
    if owner == shard.id() {
        serve_follower(shard, stream, peer, hello).await;
        return Ok(());
    }
    if owner >= shared.shards() {
        refuse(
            &mut stream,
            &format!(
                "the slave asks for shard {owner}, this master has {} shards (start the slave with --shards {})",
                shared.shards(),
                shared.shards()
            ),
        )
        .await;
        return Ok(());
    }
    // The socket moves to its shard's thread as a descriptor of its own.
    let fd = std::os::fd::AsFd::as_fd(&stream)
        .try_clone_to_owned()
        .map_err(|e| format!("duplicating the HA socket: {e}"))?;
    drop(stream);
    let std_stream = std::net::TcpStream::from(fd);
    shard
        .spawn_on_shard(owner, move |owner_shard: Rc<Shard>| async move {
            match TcpStream::from_std(std_stream) {
                Ok(stream) => serve_follower(owner_shard, stream, peer, hello).await,
                Err(error) => tracing::warn!(%peer, %error, "HA socket could not join its shard"),
            }
        })
        .await
        .map_err(|e| format!("handing the connection to shard {owner}: {e}"))
}

async fn read_hello(stream: &mut TcpStream) -> std::io::Result<Option<Hello>> {
    let BufResult(result, buf) = stream.read_exact(Vec::with_capacity(HELLO_BYTES)).await;
    result?;
    let bytes: [u8; HELLO_BYTES] = buf
        .as_slice()
        .try_into()
        .map_err(|_| std::io::Error::other("short hello"))?;
    Ok(Hello::decode(&bytes))
}

/// Sends a refusal and closes.
async fn refuse(stream: &mut TcpStream, reason: &str) {
    tracing::error!(reason, "refusing a slave");
    let BufResult(_, _) = stream.write_all(wire::refusal(reason)).await;
}

/// Why a slave's log cannot continue from this master's, if it cannot.
async fn check_hello(shard: &Shard, hello: &Hello) -> Option<String> {
    let shared = shard.shared();
    let segment_size = shared.config.commitlog_segment_size_bytes;
    if usize::from(hello.shards) != shared.shards() {
        return Some(format!(
            "the slave runs {} shards, this master {}: queue placement differs (use --shards {})",
            hello.shards,
            shared.shards(),
            shared.shards()
        ));
    }
    if hello.segment_size_bytes != segment_size {
        return Some(format!(
            "the slave's segment size is {} bytes, this master's {segment_size} (use --segment-size {segment_size})",
            hello.segment_size_bytes
        ));
    }
    let master_end = shard.log_end();
    if hello.log_end > master_end {
        return Some(format!(
            "the slave's log of shard {} ends at {}, past this master's end {master_end}: it holds data the master does not (another master's store?); move its store away to copy the master afresh",
            hello.shard_id, hello.log_end
        ));
    }
    let range = wire::tail_range(hello.log_end, hello.segment_size_bytes);
    if range.end - range.start != u64::from(hello.tail_len) {
        return Some("the slave's tail check covers another range".to_owned());
    }
    match shard.log_crc(range.clone()).await {
        Ok(crc) if crc == hello.tail_crc => None,
        Ok(_) => Some(format!(
            "the slave's log of shard {} differs from this master's before offset {}: they hold different data; move the slave's store away to copy the master afresh",
            hello.shard_id, hello.log_end
        )),
        Err(error) => Some(format!(
            "cannot read this master's log at {range:?}: {}",
            ErrorChain(&error)
        )),
    }
}

/// Streams this shard's log to a slave from where its log ends, and records its reports,
/// until the connection fails or the log does.
pub async fn serve_follower(
    shard: Rc<Shard>,
    mut stream: TcpStream,
    peer: SocketAddr,
    hello: Hello,
) {
    if let Some(reason) = check_hello(&shard, &hello).await {
        refuse(&mut stream, &reason).await;
        return;
    }
    let id = shard.followers().add(peer, hello.broker_id, hello.log_end);
    tracing::info!(shard = shard.id(), %peer, broker_id = hello.broker_id, from = hello.log_end, "slave connected");
    let (reader, writer) = stream.into_split();
    let acks = std::pin::pin!(read_acks(reader, Rc::clone(&shard), id));
    let send = std::pin::pin!(send_log(writer, Rc::clone(&shard), hello.log_end));
    let why = match select(acks, send).await {
        Either::Left((why, _)) | Either::Right((why, _)) => why,
    };
    let acked = shard.followers().acked_end(id).unwrap_or(hello.log_end);
    shard.followers().remove(id);
    tracing::info!(shard = shard.id(), %peer, acked, %why, "slave disconnected");
}

async fn read_acks(mut reader: TcpStream, shard: Rc<Shard>, id: u64) -> String {
    loop {
        let read = reader.read_exact(Vec::with_capacity(ACK_BYTES));
        let BufResult(result, buf) = match compio::time::timeout(IDLE_TIMEOUT, read).await {
            Ok(read) => read,
            Err(_) => return "no report from the slave for 20 s".to_owned(),
        };
        if let Err(error) = result {
            return format!("reading its report: {error}");
        }
        let mut bytes = [0u8; ACK_BYTES];
        bytes.copy_from_slice(&buf);
        shard.followers().acked(id, u64::from_be_bytes(bytes));
    }
}

async fn send_log(mut writer: TcpStream, shard: Rc<Shard>, from: u64) -> String {
    let mut next = from;
    loop {
        let frame = match shard.replication_frame(next, DEFAULT_FRAME_BYTES).await {
            Ok(frame) => frame,
            Err(error) => return format!("reading the log: {}", ErrorChain(&error)),
        };
        let (header, body) = match frame {
            Some(frame) => {
                let len = frame.bytes.len() as u32;
                let header = wire::data_header(frame.log_offset, len);
                next = frame.log_offset + u64::from(len);
                (header, Some(frame.bytes))
            }
            None => {
                let wait = std::pin::pin!(shard.wait_log_past(next));
                let tick = std::pin::pin!(compio::time::sleep(HEARTBEAT_INTERVAL));
                match select(wait, tick).await {
                    Either::Left((Ok(()), _)) => continue,
                    Either::Left((Err(error), _)) => {
                        return format!("waiting for the log: {}", ErrorChain(&error))
                    }
                    Either::Right(((), _)) => (wire::data_header(next, 0), None),
                }
            }
        };
        let BufResult(result, _) = writer.write_all(header.to_vec()).await;
        if let Err(error) = result {
            return format!("writing to the slave: {error}");
        }
        if let Some(body) = body {
            let BufResult(result, _) = writer.write_all(body).await;
            if let Err(error) = result {
                return format!("writing to the slave: {error}");
            }
        }
    }
}
