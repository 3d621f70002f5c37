//! Test support: the real `ringmq-server` through `ringmq-testkit` (binary next to the test
//! executable or `$RINGMQ_SERVER_BIN`, port 0, temporary store, registration awaited), with
//! the addresses as the strings command lines take.
#![allow(dead_code)]

/// A running broker with an embedded name server; killed when dropped.
pub struct Broker {
    _inner: ringmq_testkit::Broker,
    pub broker_addr: String,
    pub namesrv_addr: String,
    /// The broker's process id, as `--broker-pid` takes it.
    pub pid: String,
}

impl Broker {
    /// One shard: the tests are about the tools, and the machine has two cores for everyone.
    pub fn start() -> Broker {
        let inner = ringmq_testkit::Broker::start(&["--shards", "1"]);
        inner.wait_registered();
        Broker {
            broker_addr: inner.broker_addr.to_string(),
            namesrv_addr: inner.namesrv().to_string(),
            pid: inner.child.id().to_string(),
            _inner: inner,
        }
    }
}
