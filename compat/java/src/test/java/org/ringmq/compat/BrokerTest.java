package org.ringmq.compat;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;

/** One ringmq-server per test class; every test has a bounded run time. */
@Timeout(90)
public abstract class BrokerTest {
    protected static RingmqBroker broker;

    /**
     * The suite's delay levels (messageDelayLevel): level n waits n × 100 ms up to level 9,
     * then 1 s, so that retries (level 3 + reconsume count) and delayed sends are seen
     * within a test's bounds. Apache's default starts "1s 5s 10s 30s 1m ...".
     */
    static final String DELAY_LEVELS =
        "100ms 200ms 300ms 400ms 500ms 600ms 700ms 800ms 900ms 1s 1s 1s 1s 1s 1s 1s 1s 1s";

    @BeforeAll
    static void startBroker() throws Exception {
        broker = RingmqBroker.start("--message-delay-level", DELAY_LEVELS);
    }

    @AfterAll
    static void stopBroker() throws Exception {
        if (broker != null) {
            broker.close();
            broker = null;
        }
    }

    protected static String namesrv() {
        return broker.namesrv;
    }
}
