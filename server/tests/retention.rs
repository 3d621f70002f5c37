//! CommitLog retention in a real broker process (issue 12): with a short fileReservedTime
//! and every hour a deleteWhen hour, old segments are deleted while the broker serves; a
//! consumer whose offset fell below the queue's new min is answered PULL_OFFSET_MOVED
//! (status OFFSET_TOO_SMALL) with nextBeginOffset = the min, and continues from there to
//! the end of the queue without spinning.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use ringmq_protocol::codes::response_code;
use support::{pull_request, send_request, Broker, TestClient};

const TOPIC: &str = "RetainedTopic";
const MESSAGES: i64 = 120;

fn segment_count(store: &Path) -> usize {
    std::fs::read_dir(store.join("commitlog/0"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().len() == 20)
        .count()
}

fn pull(client: &mut TestClient, offset: i64) -> (i32, i64, i64, String) {
    let response = client.call(pull_request("G", TOPIC, 0, offset, 0));
    let field = |key: &str| response.ext(key).unwrap().parse::<i64>().unwrap();
    (
        response.code,
        field("nextBeginOffset"),
        field("minOffset"),
        response.remark.clone().unwrap_or_default(),
    )
}

#[test]
fn old_segments_are_deleted_and_a_consumer_below_the_min_skips_forward() {
    let every_hour: Vec<String> = (0..24).map(|h| format!("{h:02}")).collect();
    let every_hour = every_hour.join(";");
    let broker = Broker::start(&[
        "--shards",
        "1",
        "--segment-size",
        "4096",
        "--file-reserved-time-secs",
        "1",
        "--delete-when",
        &every_hour,
        "--clean-resource-interval-ms",
        "200",
    ]);
    let mut client = broker.connect();
    for i in 0..MESSAGES {
        let body = vec![b'a' + (i % 26) as u8; 400];
        let response = client.call(send_request(TOPIC, 0, "", &body));
        assert_eq!(
            response.code,
            response_code::SUCCESS,
            "{:?}",
            response.remark
        );
    }
    let written = segment_count(broker.store.path());
    assert!(written >= 10, "only {written} segments");

    // Retention runs every 200 ms; segments expire a second after their last write.
    let deadline = Instant::now() + Duration::from_secs(20);
    while segment_count(broker.store.path()) > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        segment_count(broker.store.path()),
        1,
        "retention left the active segment only"
    );

    // A consumer still at offset 3 is told where the queue now starts.
    let (code, next, min, remark) = pull(&mut client, 3);
    assert_eq!(code, response_code::PULL_OFFSET_MOVED);
    assert_eq!(remark, "OFFSET_TOO_SMALL");
    assert!(min > 3 && min < MESSAGES, "min offset {min}");
    assert_eq!(next, min);

    // Following nextBeginOffset it reads every remaining message, each pull moving forward.
    let mut offset = next;
    let mut pulls = 0;
    while offset < MESSAGES {
        let (code, next, _, remark) = pull(&mut client, offset);
        assert_eq!(code, response_code::SUCCESS, "at {offset}: {remark}");
        assert!(next > offset, "no progress at {offset}");
        offset = next;
        pulls += 1;
        assert!(pulls < 100, "the consumer spins");
    }
    assert_eq!(offset, MESSAGES);

    // Sends go on at the queue's old end.
    let response = client.call(send_request(TOPIC, 0, "", b"after"));
    assert_eq!(response.code, response_code::SUCCESS);
    assert_eq!(response.ext("queueOffset"), Some("120"));

    // A restart keeps the queue's min and max offsets.
    let (status, store) = broker.terminate();
    assert!(status.success());
    let broker = Broker::start_on_store(store, &["--shards", "1", "--segment-size", "4096"]);
    let mut client = broker.connect();
    let (code, next, restarted_min, _) = pull(&mut client, 0);
    assert_eq!(code, response_code::PULL_OFFSET_MOVED);
    assert_eq!((next, restarted_min), (min, min));
    let (code, ..) = pull(&mut client, MESSAGES);
    assert_eq!(code, response_code::SUCCESS);
}
