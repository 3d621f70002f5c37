//! Header codec cost of one send (issue 14, "allocation-free hot path"). Not a test:
//! `cargo bench -p ringmq-protocol --bench header_codec`.
//!
//! What the broker does with the header of every SEND_MESSAGE_V2 and its answer, timed and
//! with its heap allocations counted, beside a lower bound for the same work:
//! - **today**: the JSON header decoded into a [`RemotingCommand`] (extFields as a map of
//!   owned strings), the typed [`SendMessageRequestHeader`] read from that map, the
//!   [`SendMessageResponseHeader`] written into a map and the response header encoded;
//! - **direct**: the same JSON decoded by serde straight into a struct of the send header's
//!   fields borrowed from the input (no map, strings copied only where JSON escapes them),
//!   and the response header written straight into the output buffer.
//!
//! The header is what the Java client 4.9 sends (the keys `a`…`n`, properties with a
//! `UNIQ_KEY`, `WAIT` and `TAGS`). Bounded: each side runs a fixed number of iterations.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout};
use std::borrow::Cow;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::{BufMut, BytesMut};
use ringmq_protocol::command::RemotingCommand;
use ringmq_protocol::ext::CommandHeader;
use ringmq_protocol::header::json;
use ringmq_protocol::headers::{SendMessageRequestHeader, SendMessageResponseHeader};
use serde::Deserialize;

/// The broker's allocator (mimalloc), counting allocations.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to mimalloc unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `MiMalloc.alloc` with this layout (see `alloc`).
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`; the new size is the caller's.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ITERATIONS: u64 = 300_000;
const MSG_ID: &str = "7F00000100002A9F0000000000012345";
const ROUNDS: usize = 3;

const SEND_V2_HEADER: &str = concat!(
    r#"{"code":310,"extFields":{"a":"bench-producer","b":"BenchTopic","c":"TBW102","d":"4","#,
    r#""e":"3","f":"0","g":"1765111111111","h":"0","#,
    r#""i":"UNIQ_KEY\u00017F0000010B7818B4AAC2541A8C9B0000\u0002WAIT\u0001true\u0002TAGS\u0001TagA","#,
    r#""j":"0","k":"false","m":"false"},"flag":0,"language":"JAVA","opaque":4711,"#,
    r#""serializeTypeCurrentRPC":"JSON","version":399}"#
);

/// The send header's fields, borrowed from the JSON where it has no escapes.
#[derive(Deserialize)]
#[allow(dead_code)]
struct DirectSendExt<'a> {
    #[serde(borrow)]
    a: Cow<'a, str>,
    #[serde(borrow)]
    b: Cow<'a, str>,
    #[serde(borrow)]
    c: Cow<'a, str>,
    #[serde(borrow)]
    d: Cow<'a, str>,
    #[serde(borrow)]
    e: Cow<'a, str>,
    #[serde(borrow)]
    f: Cow<'a, str>,
    #[serde(borrow)]
    g: Cow<'a, str>,
    #[serde(borrow)]
    h: Cow<'a, str>,
    #[serde(borrow)]
    i: Option<Cow<'a, str>>,
    #[serde(borrow)]
    j: Option<Cow<'a, str>>,
    #[serde(borrow)]
    k: Option<Cow<'a, str>>,
    #[serde(borrow)]
    m: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct DirectHeader<'a> {
    code: i32,
    opaque: i32,
    flag: i32,
    #[serde(borrow, rename = "extFields")]
    ext: DirectSendExt<'a>,
}

fn today(input: &[u8], out: &mut BytesMut) {
    let request = json::decode(input).unwrap();
    let header =
        SendMessageRequestHeader::decode_for_code(request.code, &request.ext_fields).unwrap();
    let answer = SendMessageResponseHeader {
        msg_id: MSG_ID.to_owned(),
        queue_id: header.queue_id,
        queue_offset: 123_456,
        transaction_id: None,
        batch_uniq_id: None,
        recall_handle: None,
    };
    let response = RemotingCommand::response_to(&request, 0).with_ext_fields(answer.to_ext());
    json::encode(&response, out).unwrap();
}

fn direct(input: &[u8], out: &mut BytesMut) {
    let request: DirectHeader<'_> = serde_json::from_slice(input).unwrap();
    let queue_id: i32 = request.ext.e.parse().unwrap();
    let _born_ms: i64 = request.ext.g.parse().unwrap();
    let mut w = out.writer();
    write!(
        w,
        r#"{{"code":0,"extFields":{{"msgId":"{}","queueId":"{}","queueOffset":"{}"}},"flag":1,"language":"JAVA","opaque":{},"serializeTypeCurrentRPC":"JSON","version":479}}"#,
        MSG_ID, queue_id, 123_456, request.opaque
    )
    .unwrap();
}

fn measure(name: &str, run: fn(&[u8], &mut BytesMut)) {
    let input = SEND_V2_HEADER.as_bytes();
    let mut out = BytesMut::with_capacity(512);
    let allocations_before = ALLOCATIONS.load(Ordering::Relaxed);
    let start = Instant::now();
    for _ in 0..ITERATIONS {
        out.clear();
        run(std::hint::black_box(input), &mut out);
        std::hint::black_box(&out);
    }
    let elapsed = start.elapsed();
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations_before;
    println!(
        "{name:<8} {:>8.0} ns per request + response {:>6.1} allocations",
        elapsed.as_nanos() as f64 / ITERATIONS as f64,
        allocations as f64 / ITERATIONS as f64
    );
}

fn main() {
    // Both sides read the same header the same way.
    let mut a = BytesMut::new();
    today(SEND_V2_HEADER.as_bytes(), &mut a);
    let decoded = json::decode(&a).unwrap();
    assert_eq!(decoded.ext_fields["queueId"], "3");
    for round in 1..=ROUNDS {
        println!("# round {round}");
        measure("today", today);
        measure("direct", direct);
    }
}
