package org.ringmq.compat;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.HashSet;
import java.util.Set;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class BroadcastConsumerTest extends BrokerTest {
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

    private static DefaultMQPushConsumer member(String group, String instance, String topic, Collector into)
        throws Exception {
        DefaultMQPushConsumer c = Clients.pushConsumer(namesrv(), group);
        c.setInstanceName(instance);
        Clients.broadcasting(c);
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.subscribe(topic, "*");
        c.registerMessageListener(into.listener());
        c.start();
        return c;
    }

    @Test
    void everyMemberReceivesEveryMessage() throws Exception {
        String topic = Clients.unique("bcast");
        String group = Clients.unique("gbcast");
        Set<String> warm = send(topic, "warm", 1);
        Collector a = new Collector();
        Collector b = new Collector();
        DefaultMQPushConsumer ca = member(group, Clients.unique("ba"), topic, a);
        DefaultMQPushConsumer cb = member(group, Clients.unique("bb"), topic, b);
        try {
            Set<String> sent = send(topic, "m", 30);
            sent.addAll(warm);
            assertTrue(a.awaitBodies(sent, Duration.ofSeconds(30)), "a got " + a.size());
            assertTrue(b.awaitBodies(sent, Duration.ofSeconds(30)), "b got " + b.size());
        } finally {
            ca.shutdown();
            cb.shutdown();
        }
    }

    @Test
    void restartResumesFromLocalOffsets() throws Exception {
        String topic = Clients.unique("bresume");
        String group = Clients.unique("gbresume");
        String instance = Clients.unique("bres");
        Set<String> first = send(topic, "first", 20);
        Collector before = new Collector();
        DefaultMQPushConsumer c1 = member(group, instance, topic, before);
        try {
            assertTrue(before.awaitBodies(first, Duration.ofSeconds(30)), "first run got " + before.size());
            Thread.sleep(1500); // past the 1 s persist interval
        } finally {
            c1.shutdown(); // persists the local offsets file
        }
        Set<String> second = send(topic, "second", 20);
        Collector after = new Collector();
        DefaultMQPushConsumer c2 = member(group, instance, topic, after);
        try {
            assertTrue(after.awaitBodies(second, Duration.ofSeconds(30)), "second run got " + after.size());
            Thread.sleep(1000);
            Set<String> again = new HashSet<>(after.bodies());
            again.retainAll(first);
            assertTrue(again.isEmpty(), "resumed after the first batch, but re-got " + again);
        } finally {
            c2.shutdown();
        }
    }

    private static Set<String> send(String topic, String prefix, int n) throws Exception {
        Set<String> sent = new HashSet<>();
        for (int i = 0; i < n; i++) {
            String body = prefix + "-" + i;
            producer.send(new org.apache.rocketmq.common.message.Message(topic, body.getBytes()));
            sent.add(body);
        }
        return sent;
    }

}
