package org.ringmq.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.MessageSelector;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.LocalTransactionState;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.client.producer.TransactionListener;
import org.apache.rocketmq.client.producer.TransactionMQProducer;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * What ringmq does not serve yet. Each test asserts the CURRENT behaviour (a clear error or a
 * documented difference, always within a bound) so that a change shows up here; when the
 * feature lands, the test is rewritten to assert Apache's behaviour.
 */
class NotServedYetTest extends BrokerTest {
    private static DefaultMQProducer producer;

    @BeforeAll
    static void startProducer() throws Exception {
        producer = Clients.producer(namesrv());
    }

    @AfterAll
    static void stopProducer() {
        if (producer != null) {
            producer.shutdown();
        }
    }

    /**
     * Transactions: a half (prepared) message is refused with NO_PERMISSION, as by an Apache
     * broker with transactions switched off, so the producer gets an error instead of a
     * message that would never be delivered.
     */
    @Test
    void notYetTransactionSendRefused() throws Exception {
        String topic = Clients.unique("tx");
        producer.send(new Message(topic, "warm".getBytes(StandardCharsets.UTF_8)));
        TransactionMQProducer tx = new TransactionMQProducer(Clients.unique("gtx"));
        tx.setNamesrvAddr(namesrv());
        tx.setInstanceName(Clients.unique("tx"));
        tx.setVipChannelEnabled(false);
        tx.setRetryTimesWhenSendFailed(0);
        tx.setTransactionListener(new TransactionListener() {
            @Override
            public LocalTransactionState executeLocalTransaction(Message msg, Object arg) {
                return LocalTransactionState.COMMIT_MESSAGE;
            }

            @Override
            public LocalTransactionState checkLocalTransaction(MessageExt msg) {
                return LocalTransactionState.COMMIT_MESSAGE;
            }
        });
        tx.start();
        try {
            Message half = new Message(topic, "half".getBytes(StandardCharsets.UTF_8));
            MQClientException e = assertThrows(MQClientException.class,
                () -> tx.sendMessageInTransaction(half, null));
            StringBuilder causes = new StringBuilder();
            for (Throwable t = e; t != null; t = t.getCause()) {
                causes.append(t.getMessage()).append(" | ");
            }
            assertTrue(causes.toString().contains("transaction"), causes.toString());
            List<MessageExt> read = Clients.readAll(namesrv(), topic, 2, Duration.ofSeconds(3));
            assertEquals(java.util.Set.of("warm"), Clients.bodies(read));
        } finally {
            tx.shutdown();
        }
    }

    /** SQL92 filters: CHECK_CLIENT_CONFIG is not served, so the consumer refuses to start. */
    @Test
    void notYetSql92FilterRefusedAtStart() throws Exception {
        String topic = Clients.unique("sql");
        producer.send(new Message(topic, "warm".getBytes(StandardCharsets.UTF_8)));
        DefaultMQPushConsumer c = Clients.pushConsumer(namesrv(), Clients.unique("gsql"));
        c.subscribe(topic, MessageSelector.bySql("a > 5"));
        c.registerMessageListener(new Collector().listener());
        try {
            MQClientException e = assertThrows(MQClientException.class, c::start);
            assertTrue(String.valueOf(e.getMessage()).contains("not supported")
                || String.valueOf(e.getCause()).contains("not supported"), e.toString());
        } finally {
            c.shutdown();
        }
    }

    /** QUERY_MESSAGE is not served: query by key (and mqadmin queryMsgByKey / queryMsgByUniqueKey) fails. */
    @Test
    void notYetQueryMessageByKeyRefused() throws Exception {
        String topic = Clients.unique("bykey");
        producer.send(new Message(topic, "T", "the-key", "k".getBytes(StandardCharsets.UTF_8)));
        DefaultMQAdminExt admin = Clients.admin(namesrv());
        try {
            long start = System.nanoTime();
            Exception e = assertThrows(Exception.class,
                () -> admin.queryMessage(topic, "the-key", 32, 0, Long.MAX_VALUE));
            assertTrue(System.nanoTime() - start < Duration.ofSeconds(15).toNanos(), "bounded");
            assertTrue(e instanceof MQClientException, e.toString());
        } finally {
            admin.shutdown();
        }
    }
}
