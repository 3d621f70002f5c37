package org.ringmq.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.exception.MQBrokerException;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageAccessor;
import org.apache.rocketmq.common.message.MessageExt;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Delayed sends: a 4.x delay level (setDelayTimeLevel) and a 5.x timed message (the
 * TIMER_DELIVER_MS property, which the 5.x client's setDeliverTimeMs sets) reach their topic
 * when due, not before; a timed message beyond the broker's maximum delay is refused.
 */
class DelayTest extends BrokerTest {
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

    /** Wall-clock ms at which each message of the topic reached the listener. */
    private static List<Long> receive(String topic, Message m, long[] sentAt) throws Exception {
        List<Long> at = new CopyOnWriteArrayList<>();
        DefaultMQPushConsumer c = Clients.pushConsumer(namesrv(), Clients.unique("gdelay"));
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.subscribe(topic, "*");
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt ignored : msgs) {
                at.add(System.currentTimeMillis());
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c.start();
        try {
            sentAt[0] = System.currentTimeMillis();
            assertEquals(SendStatus.SEND_OK, producer.send(m).getSendStatus());
            // The topic's warm-up message, then the delayed one.
            assertTrue(Clients.await(Duration.ofSeconds(20), () -> at.size() >= 2), "delivered: " + at);
            Thread.sleep(500);
            return at;
        } finally {
            c.shutdown();
        }
    }

    @Test
    void delayLevelMessageArrivesWhenDue() throws Exception {
        String topic = Clients.unique("delay");
        producer.send(new Message(topic, "warm".getBytes(StandardCharsets.UTF_8)));
        Message m = new Message(topic, "later".getBytes(StandardCharsets.UTF_8));
        m.setDelayTimeLevel(10); // 1 s in this suite's levels
        long[] sentAt = new long[1];
        List<Long> at = receive(topic, m, sentAt);
        assertEquals(2, at.size(), "the warm-up message and the delayed one, once each");
        long after = at.get(1) - sentAt[0];
        assertTrue(after >= 1000 && after < 6000, "delivered " + after + " ms after the send");
    }

    @Test
    void timedMessageArrivesAtItsDeliverTime() throws Exception {
        String topic = Clients.unique("timer");
        producer.send(new Message(topic, "warm".getBytes(StandardCharsets.UTF_8)));
        Message m = new Message(topic, "at".getBytes(StandardCharsets.UTF_8));
        long due = System.currentTimeMillis() + 1500;
        MessageAccessor.putProperty(m, "TIMER_DELIVER_MS", Long.toString(due));
        long[] sentAt = new long[1];
        List<Long> at = receive(topic, m, sentAt);
        assertEquals(2, at.size(), "the warm-up message and the timed one, once each");
        long late = at.get(1) - due;
        assertTrue(late >= 0 && late < 5000, "delivered " + late + " ms after its deliver time");
    }

    @Test
    void timedMessageBeyondTheMaximumDelayIsRefused() throws Exception {
        String topic = Clients.unique("toofar");
        producer.send(new Message(topic, "warm".getBytes(StandardCharsets.UTF_8)));
        Message m = new Message(topic, "never".getBytes(StandardCharsets.UTF_8));
        MessageAccessor.putProperty(m, "TIMER_DELAY_SEC", Long.toString(4L * 24 * 3600));
        MQBrokerException e = assertThrows(MQBrokerException.class, () -> producer.send(m));
        assertEquals(13, e.getResponseCode(), e.toString());
        assertTrue(String.valueOf(e.getErrorMessage()).contains("max delay"), e.toString());
    }
}
