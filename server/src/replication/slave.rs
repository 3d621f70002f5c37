//! The slave's side: one link per shard that follows the master's log of the same shard.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use compio::io::{AsyncReadExt, AsyncWriteExt};
use compio::net::TcpStream;
use compio::BufResult;
use ringmq_engine::error::ErrorChain;

use super::wire::{self, Hello, MasterHeader, FRAME_HEADER_BYTES};
use super::IDLE_TIMEOUT;
use crate::shard::shared::MasterHaAddr;
use crate::shard::Shard;
use crate::shutdown::Shutdown;

/// Wait between connection attempts (RocketMQ: 5 s).
const RECONNECT_INTERVAL: Duration = Duration::from_secs(1);

/// Why a link stopped for good.
#[derive(Debug)]
pub enum LinkEnd {
    /// Shutdown was requested.
    Shutdown,
    /// The master refused this slave's log: going on would diverge.
    Refused(String),
}

/// Follows the master's log of this shard until shutdown, reconnecting after failures.
pub async fn run_link(
    shard: Rc<Shard>,
    master_ha: MasterHaAddr,
    shutdown: Arc<Shutdown>,
) -> LinkEnd {
    let mut last_error = String::new();
    loop {
        if shutdown.is_requested() {
            return LinkEnd::Shutdown;
        }
        let Some(addr) = master_ha() else {
            compio::time::sleep(RECONNECT_INTERVAL).await;
            continue;
        };
        match follow(&shard, &addr, &shutdown).await {
            Ok(end) => return end,
            Err(error) => {
                // Logged once per distinct failure, not every second.
                if error != last_error {
                    tracing::warn!(shard = shard.id(), master = %addr, %error, "replication link down; retrying every second");
                    last_error = error;
                }
            }
        }
        compio::time::sleep(RECONNECT_INTERVAL).await;
    }
}

/// One connection: hello, then frames until it fails (`Err`) or ends the link (`Ok`).
async fn follow(shard: &Rc<Shard>, addr: &str, shutdown: &Shutdown) -> Result<LinkEnd, String> {
    let mut stream = compio::time::timeout(Duration::from_secs(3), TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connecting to {addr} timed out"))?
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    // An ack is 8 bytes: Nagle would hold each one until the master's delayed ACK of the
    // previous (~40 ms), and a SYNC_MASTER's sends wait on every ack.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(master = %addr, %error, "set_nodelay failed");
    }
    let shared = shard.shared();
    let segment_size = shared.config.commitlog_segment_size_bytes;
    let log_end = shard.log_end();
    let tail = wire::tail_range(log_end, segment_size);
    let tail_crc = shard
        .log_crc(tail.clone())
        .await
        .map_err(|e| format!("reading this slave's log tail: {}", ErrorChain(&e)))?;
    let hello = Hello {
        shard_id: u8::try_from(shard.id()).map_err(|_| "shard id above 255".to_owned())?,
        shards: u8::try_from(shared.shards()).map_err(|_| "more than 255 shards".to_owned())?,
        segment_size_bytes: segment_size,
        log_end,
        tail_len: u32::try_from(tail.end - tail.start).unwrap_or(0),
        tail_crc,
        broker_id: shared.config.broker_id,
    };
    write(&mut stream, hello.encode().to_vec()).await?;
    tracing::info!(shard = shard.id(), master = %addr, from = log_end, "following the master's log");
    loop {
        if shutdown.is_requested() {
            return Ok(LinkEnd::Shutdown);
        }
        let header = read_exact(&mut stream, FRAME_HEADER_BYTES).await?;
        let header: [u8; FRAME_HEADER_BYTES] = header
            .as_slice()
            .try_into()
            .map_err(|_| "short frame header".to_owned())?;
        match MasterHeader::decode(&header).map_err(|e| e.to_string())? {
            MasterHeader::Refusal => {
                let len = read_exact(&mut stream, 4).await?;
                let len = wire::refusal_reason_len(len.as_slice().try_into().unwrap_or([0; 4]))
                    .map_err(|e| e.to_string())?;
                let reason = read_exact(&mut stream, len as usize).await?;
                return Ok(LinkEnd::Refused(
                    String::from_utf8_lossy(&reason).into_owned(),
                ));
            }
            MasterHeader::Data { len: 0, .. } => {}
            MasterHeader::Data { log_offset, len } => {
                let bytes = read_exact(&mut stream, len as usize).await?;
                shard
                    .append_replicated(log_offset, Bytes::from(bytes))
                    .await
                    .map_err(|e| format!("appending the master's records: {}", ErrorChain(&e)))?;
            }
        }
        // Report after every frame, the master's heartbeats (every 5 s when idle) included:
        // sync replication waits on these reports, and they keep the master's side alive.
        // The end reported is where this store's log is dispatched, which `append_replicated`
        // reaches only after the group writer wrote the frame and, with --flush sync,
        // fdatasynced it (one sync per group, not per record): a SYNC_MASTER's SEND_OK never
        // counts on bytes this slave could still lose to a power cut.
        write(&mut stream, shard.log_end().to_be_bytes().to_vec()).await?;
    }
}

async fn read_exact(stream: &mut TcpStream, len: usize) -> Result<Vec<u8>, String> {
    let read = stream.read_exact(Vec::with_capacity(len));
    match compio::time::timeout(IDLE_TIMEOUT, read).await {
        Ok(BufResult(Ok(()), buf)) => Ok(buf),
        Ok(BufResult(Err(error), _)) => Err(format!("reading from the master: {error}")),
        Err(_) => Err("nothing from the master for 20 s".to_owned()),
    }
}

async fn write(stream: &mut TcpStream, bytes: Vec<u8>) -> Result<(), String> {
    let BufResult(result, _) = stream.write_all(bytes).await;
    result.map_err(|e| format!("writing to the master: {e}"))
}
