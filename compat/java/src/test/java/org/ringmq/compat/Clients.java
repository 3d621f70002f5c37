package org.ringmq.compat;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;

import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;

/** Client construction with short intervals, unique names, and bounded waits. */
public final class Clients {
    private static final AtomicLong SEQ = new AtomicLong();
    private static final String RUN = Long.toString(System.currentTimeMillis() % 1_000_000, 36);

    private Clients() {
    }

    /** A name no other test (or earlier run against the same store) uses. */
    public static String unique(String prefix) {
        return prefix + "_" + RUN + "_" + SEQ.incrementAndGet();
    }

    public static boolean isClient5() {
        return "client5".equals(System.getProperty("compat.profile", "client5"));
    }

    public static DefaultMQAdminExt admin(String namesrv) throws Exception {
        DefaultMQAdminExt admin = new DefaultMQAdminExt(5000);
        admin.setNamesrvAddr(namesrv);
        admin.setInstanceName(unique("admin"));
        admin.setVipChannelEnabled(false);
        admin.start();
        return admin;
    }

    public static DefaultMQProducer producer(String namesrv) throws Exception {
        DefaultMQProducer producer = new DefaultMQProducer(unique("pg"));
        producer.setNamesrvAddr(namesrv);
        producer.setInstanceName(unique("producer"));
        producer.setVipChannelEnabled(false);
        producer.setSendMsgTimeout(5000);
        producer.start();
        return producer;
    }

    /** A push consumer not yet started: its own client instance, short intervals. */
    public static DefaultMQPushConsumer pushConsumer(String namesrv, String group) {
        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(group);
        consumer.setNamesrvAddr(namesrv);
        consumer.setInstanceName(unique("push"));
        consumer.setVipChannelEnabled(false);
        consumer.setPersistConsumerOffsetInterval(1000);
        consumer.setHeartbeatBrokerInterval(1000);
        consumer.setPollNameServerInterval(1000);
        return consumer;
    }

    /**
     * Sets BROADCASTING; MessageModel moved packages between 4.9 and 5.x, so it is found
     * through the setter's parameter type.
     */
    @SuppressWarnings({"unchecked", "rawtypes"})
    public static void broadcasting(Object consumer) throws Exception {
        for (var m : consumer.getClass().getMethods()) {
            if (m.getName().equals("setMessageModel")) {
                Class type = m.getParameterTypes()[0];
                m.invoke(consumer, Enum.valueOf(type, "BROADCASTING"));
                return;
            }
        }
        throw new IllegalStateException("no setMessageModel");
    }

    public static DefaultLitePullConsumer litePull(String namesrv, String group) {
        DefaultLitePullConsumer consumer = new DefaultLitePullConsumer(group);
        consumer.setNamesrvAddr(namesrv);
        consumer.setInstanceName(unique("lite"));
        consumer.setVipChannelEnabled(false);
        consumer.setPollTimeoutMillis(500);
        consumer.setAutoCommit(false);
        consumer.setPollNameServerInterval(1000);
        return consumer;
    }

    /** Every message of the topic from offset 0 of each queue, read with an assigned lite pull consumer. */
    public static List<MessageExt> readAll(String namesrv, String topic, int expected, Duration timeout)
        throws Exception {
        DefaultLitePullConsumer consumer = litePull(namesrv, unique("reader"));
        consumer.start();
        try {
            Collection<MessageQueue> queues = consumer.fetchMessageQueues(topic);
            consumer.assign(new ArrayList<>(queues));
            for (MessageQueue mq : queues) {
                consumer.seek(mq, 0);
            }
            List<MessageExt> all = new ArrayList<>();
            long deadline = System.nanoTime() + timeout.toNanos();
            while (all.size() < expected && System.nanoTime() < deadline) {
                all.addAll(consumer.poll(500));
            }
            return all;
        } finally {
            consumer.shutdown();
        }
    }

    public static String body(MessageExt msg) {
        return new String(msg.getBody(), StandardCharsets.UTF_8);
    }

    public static Set<String> bodies(Collection<MessageExt> msgs) {
        Set<String> set = new HashSet<>();
        for (MessageExt m : msgs) {
            set.add(body(m));
        }
        return set;
    }

    /** Waits until the condition holds; false when the bound passes first. */
    public static boolean await(Duration bound, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + bound.toNanos();
        while (System.nanoTime() < deadline) {
            if (condition.getAsBoolean()) {
                return true;
            }
            TimeUnit.MILLISECONDS.sleep(50);
        }
        return condition.getAsBoolean();
    }
}
