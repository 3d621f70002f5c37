package org.ringmq.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.consumer.DefaultMQPullConsumer;
import org.apache.rocketmq.client.consumer.PullResult;
import org.apache.rocketmq.client.consumer.PullStatus;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class PullConsumerTest extends BrokerTest {
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

    private static Set<String> send(String topic, String prefix, int n) throws Exception {
        Set<String> sent = new HashSet<>();
        for (int i = 0; i < n; i++) {
            String body = prefix + "-" + i;
            producer.send(new Message(topic, body.getBytes(StandardCharsets.UTF_8)));
            sent.add(body);
        }
        return sent;
    }

    @Test
    void litePullSubscribe() throws Exception {
        String topic = Clients.unique("litesub");
        Set<String> sent = send(topic, "m", 30);
        DefaultLitePullConsumer c = Clients.litePull(namesrv(), Clients.unique("glitesub"));
        c.setAutoCommit(true);
        c.subscribe(topic, "*");
        c.start();
        try {
            Set<String> got = new HashSet<>();
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (!got.containsAll(sent) && System.nanoTime() < deadline) {
                got.addAll(Clients.bodies(c.poll(500)));
            }
            assertEquals(sent, got);
        } finally {
            c.shutdown();
        }
    }

    @Test
    void litePullAssignSeekCommit() throws Exception {
        String topic = Clients.unique("liteassign");
        String group = Clients.unique("gliteassign");
        MessageQueue mq = null;
        for (int i = 0; i < 10; i++) {
            SendResult r = producer.send(new Message(topic, ("q-" + i).getBytes(StandardCharsets.UTF_8)),
                (mqs, msg, arg) -> mqs.get(0), null);
            mq = r.getMessageQueue();
        }
        DefaultLitePullConsumer c = Clients.litePull(namesrv(), group);
        c.start();
        try {
            c.assign(List.of(mq));
            c.seek(mq, 5);
            List<MessageExt> got = new ArrayList<>();
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (got.size() < 5 && System.nanoTime() < deadline) {
                got.addAll(c.poll(500));
            }
            assertEquals(5, got.size());
            assertEquals(5, got.get(0).getQueueOffset());
            assertEquals("q-5", Clients.body(got.get(0)));
            c.commitSync();
        } finally {
            c.shutdown();
        }
        // a fresh consumer of the group reads the committed offset from the broker
        DefaultLitePullConsumer again = Clients.litePull(namesrv(), group);
        again.start();
        try {
            assertEquals(10, again.committed(mq));
        } finally {
            again.shutdown();
        }
    }

    @Test
    void deprecatedPullConsumerPullsAndCommits() throws Exception {
        String topic = Clients.unique("pull");
        String group = Clients.unique("gpull");
        send(topic, "m", 20);
        @SuppressWarnings("deprecation")
        DefaultMQPullConsumer c = new DefaultMQPullConsumer(group);
        c.setNamesrvAddr(namesrv());
        c.setInstanceName(Clients.unique("pullc"));
        c.setVipChannelEnabled(false);
        c.start();
        try {
            Set<MessageQueue> queues = c.fetchSubscribeMessageQueues(topic);
            assertEquals(4, queues.size());
            Set<String> got = new HashSet<>();
            for (MessageQueue mq : queues) {
                long max = c.maxOffset(mq);
                assertEquals(0, c.minOffset(mq));
                if (max == 0) {
                    continue;
                }
                PullResult r = c.pull(mq, "*", 0, 32, 5000);
                assertEquals(PullStatus.FOUND, r.getPullStatus());
                assertEquals(max, r.getNextBeginOffset());
                got.addAll(Clients.bodies(r.getMsgFoundList()));
                PullResult none = c.pull(mq, "*", max, 32, 5000);
                assertEquals(PullStatus.NO_NEW_MSG, none.getPullStatus());
                c.updateConsumeOffset(mq, max);
            }
            assertEquals(20, got.size());
            c.getOffsetStore().persistAll(queues);
            for (MessageQueue mq : queues) {
                if (c.maxOffset(mq) > 0) {
                    assertEquals(c.maxOffset(mq), c.fetchConsumeOffset(mq, true));
                }
            }
        } finally {
            c.shutdown();
        }
    }
}
