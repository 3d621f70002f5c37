package org.ringmq.compat;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;

/** One ringmq-server per test class; every test has a bounded run time. */
@Timeout(90)
public abstract class BrokerTest {
    protected static RingmqBroker broker;

    @BeforeAll
    static void startBroker() throws Exception {
        broker = RingmqBroker.start();
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
