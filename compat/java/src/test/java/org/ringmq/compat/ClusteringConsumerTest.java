package org.ringmq.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.text.SimpleDateFormat;
import java.time.Duration;
import java.util.Date;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageQueue;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class ClusteringConsumerTest extends BrokerTest {
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

    static Set<String> send(String topic, String prefix, int n) throws Exception {
        Set<String> sent = new HashSet<>();
        for (int i = 0; i < n; i++) {
            String body = prefix + "-" + i;
            producer.send(new Message(topic, body.getBytes(StandardCharsets.UTF_8)));
            sent.add(body);
        }
        return sent;
    }

    /** The queues of the subscribed topic the member holds (its %RETRY% queue left out). */
    static Set<MessageQueue> held(DefaultMQPushConsumer c) {
        Set<MessageQueue> held = new HashSet<>();
        for (MessageQueue mq : c.getDefaultMQPushConsumerImpl().getRebalanceImpl().getProcessQueueTable().keySet()) {
            if (!mq.getTopic().startsWith("%RETRY%")) {
                held.add(mq);
            }
        }
        return held;
    }

    static DefaultMQPushConsumer start(String group, String topic, String expr, Collector into,
                                       ConsumeFromWhere from) throws Exception {
        DefaultMQPushConsumer c = Clients.pushConsumer(namesrv(), group);
        c.subscribe(topic, expr);
        c.setConsumeFromWhere(from);
        c.registerMessageListener(into.listener());
        c.start();
        return c;
    }

    @Test
    void twoGroupsEachReceiveEveryMessage() throws Exception {
        String topic = Clients.unique("twogroups");
        send(topic, "warm", 1);
        Collector a = new Collector();
        Collector b = new Collector();
        DefaultMQPushConsumer ca = start(Clients.unique("ga"), topic, "*", a, ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        DefaultMQPushConsumer cb = start(Clients.unique("gb"), topic, "*", b, ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        try {
            Set<String> sent = send(topic, "m", 40);
            assertTrue(a.awaitBodies(sent, Duration.ofSeconds(30)), "group a got " + a.size());
            assertTrue(b.awaitBodies(sent, Duration.ofSeconds(30)), "group b got " + b.size());
        } finally {
            ca.shutdown();
            cb.shutdown();
        }
    }

    @Test
    void twoMembersSplitQueuesAndTogetherReceiveEveryMessage() throws Exception {
        String topic = Clients.unique("split");
        String group = Clients.unique("gsplit");
        send(topic, "warm", 1);
        Collector a = new Collector();
        Collector b = new Collector();
        DefaultMQPushConsumer ca = start(group, topic, "*", a, ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        DefaultMQPushConsumer cb = start(group, topic, "*", b, ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        try {
            assertTrue(Clients.await(Duration.ofSeconds(30), () -> {
                Set<MessageQueue> qa = held(ca);
                Set<MessageQueue> qb = held(cb);
                Set<MessageQueue> both = new HashSet<>(qa);
                both.retainAll(qb);
                return qa.size() == 2 && qb.size() == 2 && both.isEmpty();
            }), "queues a=" + held(ca) + " b=" + held(cb));
            Set<String> sent = send(topic, "m", 40);
            assertTrue(Clients.await(Duration.ofSeconds(30), () -> {
                Set<String> union = new HashSet<>(a.bodies());
                union.addAll(b.bodies());
                return union.containsAll(sent);
            }), "a=" + a.size() + " b=" + b.size());
            assertTrue(a.size() > 0 && b.size() > 0, "both members consume: a=" + a.size() + " b=" + b.size());
        } finally {
            ca.shutdown();
            cb.shutdown();
        }
    }

    @Test
    void killedMemberQueuesTakenBySurvivor() throws Exception {
        String topic = Clients.unique("kill");
        String group = Clients.unique("gkill");
        send(topic, "warm", 1);
        MemberProcess member = MemberProcess.start(namesrv(), topic, group, false);
        Process other = member.process;
        Collector survivor = new Collector();
        DefaultMQPushConsumer c = null;
        try {
            c = start(group, topic, "*", survivor, ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
            DefaultMQPushConsumer cc = c;
            assertTrue(Clients.await(Duration.ofSeconds(40), () -> held(cc).size() == 2 && member.held() == 2),
                "split before the kill: survivor " + held(c) + ", other " + member.held());
            member.kill();
            assertTrue(other.waitFor(10, TimeUnit.SECONDS));
            assertEquals(137, other.exitValue(), "killed by SIGKILL");
            assertTrue(Clients.await(Duration.ofSeconds(30), () -> held(cc).size() == 4),
                "survivor takes every queue; holds " + held(c));
            Set<String> sent = send(topic, "after-kill", 40);
            assertTrue(survivor.awaitBodies(sent, Duration.ofSeconds(30)), "survivor got " + survivor.size());
        } finally {
            member.close();
            if (c != null) {
                c.shutdown();
            }
        }
    }

    @Test
    void consumeFromFirstOffsetOnNewGroup() throws Exception {
        String topic = Clients.unique("first");
        Set<String> before = send(topic, "before", 10);
        Collector got = new Collector();
        DefaultMQPushConsumer c = start(Clients.unique("gfirst"), topic, "*", got, ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        try {
            assertTrue(got.awaitBodies(before, Duration.ofSeconds(30)), "got " + got.bodies());
        } finally {
            c.shutdown();
        }
    }

    /**
     * CONSUME_FROM_LAST_OFFSET on a new group. As in Apache RocketMQ, a queue whose message at
     * offset 0 is still in the store answers QUERY_CONSUMER_OFFSET with 0 for a group without
     * an offset, so the client never asks GET_MAX_OFFSET: on a young topic a new group reads
     * from the head. Asserted as Apache does it: messages sent before the group existed arrive.
     */
    @Test
    void consumeFromLastOffsetOnNewGroup() throws Exception {
        String topic = Clients.unique("last");
        Set<String> before = send(topic, "before", 8);
        Collector got = new Collector();
        DefaultMQPushConsumer c = start(Clients.unique("glast"), topic, "*", got, ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET);
        try {
            Set<String> after = send(topic, "after", 8);
            assertTrue(got.awaitBodies(after, Duration.ofSeconds(30)), "got " + got.bodies());
            // offset 0 is still in the store: the broker answers 0 (Apache's in-memory rule)
            assertTrue(got.awaitBodies(before, Duration.ofSeconds(5)), "got " + got.bodies());
        } finally {
            c.shutdown();
        }
    }

    /**
     * CONSUME_FROM_TIMESTAMP on a new group: the messages after the timestamp arrive. (Like
     * LAST, see above: on a young topic the broker's offset-0 rule starts the group at the head.)
     */
    @Test
    void consumeFromTimestampOnNewGroup() throws Exception {
        String topic = Clients.unique("ts");
        Set<String> old = send(topic, "old", 8);
        Thread.sleep(1100);
        String stamp = new SimpleDateFormat("yyyyMMddHHmmss").format(new Date());
        Thread.sleep(1100);
        Set<String> fresh = send(topic, "new", 8);
        Collector got = new Collector();
        DefaultMQPushConsumer c = Clients.pushConsumer(namesrv(), Clients.unique("gts"));
        c.subscribe(topic, "*");
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_TIMESTAMP);
        c.setConsumeTimestamp(stamp);
        c.registerMessageListener(got.listener());
        c.start();
        try {
            assertTrue(got.awaitBodies(fresh, Duration.ofSeconds(30)), "got " + got.bodies());
            // the same rule as for LAST (Apache's): offset 0 is still in the store, so the
            // broker answers 0 and the timestamp is not searched; the old messages arrive too
            assertTrue(got.awaitBodies(old, Duration.ofSeconds(5)), "got " + got.bodies());
        } finally {
            c.shutdown();
        }
    }

    @Test
    void tagExpressionTagAOrTagB() throws Exception {
        String topic = Clients.unique("tags");
        producer.send(new Message(topic, "TagC", "warm".getBytes(StandardCharsets.UTF_8)));
        Collector got = new Collector();
        DefaultMQPushConsumer c = start(Clients.unique("gtags"), topic, "TagA || TagB", got,
            ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        try {
            Set<String> wanted = new HashSet<>();
            for (int i = 0; i < 30; i++) {
                String tag = "Tag" + "ABC".charAt(i % 3);
                String body = tag + "-" + i;
                producer.send(new Message(topic, tag, body.getBytes(StandardCharsets.UTF_8)));
                if (!tag.equals("TagC")) {
                    wanted.add(body);
                }
            }
            assertTrue(got.awaitBodies(wanted, Duration.ofSeconds(30)), "got " + got.bodies());
            Thread.sleep(1000);
            assertEquals(wanted, got.bodies(), "TagC is filtered out");
        } finally {
            c.shutdown();
        }
    }
}
