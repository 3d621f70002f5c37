package org.ringmq.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Redelivery through %RETRY%group after the delay level 3 + reconsumeTimes (the suite's levels:
 * 300 ms, 400 ms, ...; Apache's default 10 s, 30 s, 1 min, ...) and, past maxReconsumeTimes,
 * %DLQ%group.
 */
class RetryDlqTest extends BrokerTest {
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

    record Delivery(long atMillis, int reconsumeTimes, String body, String retryTopicProperty) {
    }

    private static DefaultMQPushConsumer consumer(String group, String topic, MessageListenerConcurrently l)
        throws Exception {
        DefaultMQPushConsumer c = Clients.pushConsumer(namesrv(), group);
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.subscribe(topic, "*");
        c.registerMessageListener(l);
        c.start();
        return c;
    }

    private void redeliveredOnce(boolean throwInsteadOfLater) throws Exception {
        String topic = Clients.unique("retry");
        String group = Clients.unique("gretry");
        List<Delivery> deliveries = new CopyOnWriteArrayList<>();
        DefaultMQPushConsumer c = consumer(group, topic, (msgs, ctx) -> {
            for (MessageExt m : msgs) {
                deliveries.add(new Delivery(System.currentTimeMillis(), m.getReconsumeTimes(), Clients.body(m),
                    m.getProperty("RETRY_TOPIC")));
            }
            if (msgs.get(0).getReconsumeTimes() == 0) {
                if (throwInsteadOfLater) {
                    throw new IllegalStateException("listener fails on first delivery");
                }
                return ConsumeConcurrentlyStatus.RECONSUME_LATER;
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        try {
            producer.send(new Message(topic, "again".getBytes(StandardCharsets.UTF_8)));
            assertTrue(Clients.await(Duration.ofSeconds(30), () -> deliveries.size() >= 2), "deliveries " + deliveries);
            Delivery first = deliveries.get(0);
            Delivery second = deliveries.get(1);
            assertEquals("again", second.body());
            assertEquals(0, first.reconsumeTimes());
            assertEquals(1, second.reconsumeTimes());
            // came back through the retry topic: the broker records the original topic
            assertEquals(topic, second.retryTopicProperty());
            assertTrue(c.getDefaultMQPushConsumerImpl().getSubscriptionInner().containsKey("%RETRY%" + group));
            // level 3 (300 ms in this suite) before the first redelivery
            long gap = second.atMillis() - first.atMillis();
            assertTrue(gap >= 300 && gap < 5000, "redelivered after delay level 3, after " + gap + " ms");
            Thread.sleep(500);
            assertEquals(2, deliveries.size(), "consumed once it succeeds: " + deliveries);
        } finally {
            c.shutdown();
        }
    }

    @Test
    void reconsumeLaterRedeliveredAfterDelayLevelThroughRetryTopic() throws Exception {
        redeliveredOnce(false);
    }

    @Test
    void thrownExceptionRedeliveredAfterDelayLevelThroughRetryTopic() throws Exception {
        redeliveredOnce(true);
    }

    @Test
    void afterMaxReconsumeTimesMessageGoesToDlq() throws Exception {
        String topic = Clients.unique("dlq");
        String group = Clients.unique("gdlq");
        List<Integer> times = new CopyOnWriteArrayList<>();
        DefaultMQPushConsumer c = Clients.pushConsumer(namesrv(), group);
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.setMaxReconsumeTimes(2);
        c.subscribe(topic, "*");
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt m : msgs) {
                times.add(m.getReconsumeTimes());
            }
            return ConsumeConcurrentlyStatus.RECONSUME_LATER;
        });
        c.start();
        try {
            producer.send(new Message(topic, "doomed".getBytes(StandardCharsets.UTF_8)));
            // delivered 1 + maxReconsumeTimes times, then sent back once more into the DLQ
            assertTrue(Clients.await(Duration.ofSeconds(30), () -> times.size() >= 3), "deliveries " + times);
            List<MessageExt> dead = new ArrayList<>();
            String dlq = "%DLQ%" + group;
            assertTrue(Clients.await(Duration.ofSeconds(20), () -> {
                try {
                    dead.clear();
                    dead.addAll(Clients.readAll(namesrv(), dlq, 1, Duration.ofSeconds(2)));
                    return !dead.isEmpty();
                } catch (Exception e) {
                    return false;
                }
            }), dlq + " holds the message");
            assertEquals("doomed", Clients.body(dead.get(0)));
            assertEquals(List.of(0, 1, 2), times.subList(0, 3));
            Thread.sleep(1000);
            assertEquals(3, times.size(), "no delivery after the DLQ: " + times);
        } finally {
            c.shutdown();
        }
    }
}
