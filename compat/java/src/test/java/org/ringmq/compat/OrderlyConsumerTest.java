package org.ringmq.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeOrderlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerOrderly;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.MessageQueueSelector;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.junit.jupiter.api.Test;

/**
 * Orderly consumption (LOCK_BATCH_MQ / UNLOCK_BATCH_MQ): the Java client's
 * {@code MessageListenerOrderly} consumes a queue only while it holds the queue's lock on the
 * broker, so each key's messages, sent to one queue by a selector, arrive in send order.
 */
class OrderlyConsumerTest extends BrokerTest {

    @Test
    void orderlyListenerConsumesEachQueueInSendOrder() throws Exception {
        String topic = Clients.unique("orderly");
        int keys = 4;
        int perKey = 15;
        DefaultMQProducer producer = Clients.producer(namesrv());
        MessageQueueSelector byKey = (mqs, msg, arg) -> mqs.get((Integer) arg % mqs.size());
        try {
            for (int i = 0; i < keys * perKey; i++) {
                int key = i % keys;
                String body = key + ":" + (i / keys);
                producer.send(new Message(topic, body.getBytes(StandardCharsets.UTF_8)), byKey, key);
            }
        } finally {
            producer.shutdown();
        }
        Map<Integer, List<Integer>> byQueue = new TreeMap<>();
        DefaultMQPushConsumer consumer = Clients.pushConsumer(namesrv(), Clients.unique("gorderly"));
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.subscribe(topic, "*");
        consumer.registerMessageListener((MessageListenerOrderly) (msgs, ctx) -> {
            synchronized (byQueue) {
                for (MessageExt m : msgs) {
                    String[] parts = Clients.body(m).split(":");
                    byQueue.computeIfAbsent(m.getQueueId(), q -> new ArrayList<>())
                        .add(Integer.parseInt(parts[1]));
                }
            }
            return ConsumeOrderlyStatus.SUCCESS;
        });
        consumer.start();
        try {
            assertTrue(Clients.await(Duration.ofSeconds(60), () -> {
                synchronized (byQueue) {
                    return byQueue.values().stream().mapToInt(List::size).sum() >= keys * perKey;
                }
            }), "received " + byQueue);
            var rebalance = consumer.getDefaultMQPushConsumerImpl().getRebalanceImpl();
            MessageQueue first = new MessageQueue(topic, broker.brokerName, 0);
            assertTrue(rebalance.lock(first), "the consumer holds the queue's lock");
            synchronized (byQueue) {
                for (var entry : byQueue.entrySet()) {
                    List<Integer> seen = entry.getValue();
                    List<Integer> sorted = new ArrayList<>(seen);
                    sorted.sort(null);
                    assertEquals(sorted, seen, "queue " + entry.getKey() + " out of order");
                    assertEquals(perKey, seen.size(), "queue " + entry.getKey() + " once each");
                }
            }
        } finally {
            consumer.shutdown();
        }
    }

    @Test
    void aKilledMembersQueuesAreTakenOverAndStillConsumedInOrder() throws Exception {
        String topic = Clients.unique("orderkill");
        String group = Clients.unique("gorderkill");
        int keys = 4;
        MessageQueueSelector byKey = (mqs, msg, arg) -> mqs.get((Integer) arg % mqs.size());
        DefaultMQProducer producer = Clients.producer(namesrv());
        try {
            for (int key = 0; key < keys; key++) {
                producer.send(new Message(topic, (key + ":0").getBytes(StandardCharsets.UTF_8)), byKey, key);
            }
            MemberProcess other = MemberProcess.start(namesrv(), topic, group, true);
            Map<Integer, List<Integer>> byQueue = new TreeMap<>();
            DefaultMQPushConsumer survivor = Clients.pushConsumer(namesrv(), group);
            survivor.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
            survivor.subscribe(topic, "*");
            survivor.registerMessageListener((MessageListenerOrderly) (msgs, ctx) -> {
                synchronized (byQueue) {
                    for (MessageExt m : msgs) {
                        byQueue.computeIfAbsent(m.getQueueId(), q -> new ArrayList<>())
                            .add(Integer.parseInt(Clients.body(m).split(":")[1]));
                    }
                }
                return ConsumeOrderlyStatus.SUCCESS;
            });
            survivor.start();
            try {
                assertTrue(Clients.await(Duration.ofSeconds(40),
                    () -> ClusteringConsumerTest.held(survivor).size() == 2 && other.held() == 2),
                    "split before the kill: survivor " + ClusteringConsumerTest.held(survivor)
                        + ", other " + other.held());
                long killedAt = System.nanoTime();
                other.kill();
                assertTrue(other.process.waitFor(10, java.util.concurrent.TimeUnit.SECONDS));
                assertTrue(Clients.await(Duration.ofSeconds(40),
                    () -> ClusteringConsumerTest.held(survivor).size() == keys),
                    "survivor takes every queue; holds " + ClusteringConsumerTest.held(survivor));
                double takeover = (System.nanoTime() - killedAt) / 1e9;
                int perKey = 10;
                for (int i = 1; i <= perKey; i++) {
                    for (int key = 0; key < keys; key++) {
                        producer.send(new Message(topic, (key + ":" + i).getBytes(StandardCharsets.UTF_8)),
                            byKey, key);
                    }
                }
                assertTrue(Clients.await(Duration.ofSeconds(40), () -> {
                    synchronized (byQueue) {
                        return byQueue.size() == keys && byQueue.values().stream()
                            .allMatch(seen -> seen.contains(perKey));
                    }
                }), "survivor received " + byQueue);
                System.out.printf("orderly takeover (Java client): the survivor held all %d queues "
                    + "%.1f s after the kill%n", keys, takeover);
                synchronized (byQueue) {
                    for (var entry : byQueue.entrySet()) {
                        List<Integer> seen = entry.getValue();
                        List<Integer> sorted = new ArrayList<>(seen);
                        sorted.sort(null);
                        assertEquals(sorted, seen, "queue " + entry.getKey() + " out of order");
                    }
                }
            } finally {
                survivor.shutdown();
                other.close();
            }
        } finally {
            producer.shutdown();
        }
    }
}
