package org.ringmq.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Set;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.exception.MQBrokerException;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** mqadmin's API (DefaultMQAdminExt) against ringmq; each answer is what Apache RocketMQ gives. */
class AdminTest extends BrokerTest {
    private static DefaultMQProducer producer;
    private static DefaultMQAdminExt admin;

    @BeforeAll
    static void startClients() throws Exception {
        producer = Clients.producer(namesrv());
        admin = Clients.admin(namesrv());
    }

    @AfterAll
    static void stopClients() {
        if (producer != null) {
            producer.shutdown();
        }
        if (admin != null) {
            admin.shutdown();
        }
    }

    private static void sendN(String topic, int n) throws Exception {
        for (int i = 0; i < n; i++) {
            producer.send(new Message(topic, ("m-" + i).getBytes(StandardCharsets.UTF_8)));
        }
    }

    /** An auto-created topic reaches the name server with the broker's next registration. */
    private static void awaitRoute(String topic) throws Exception {
        assertTrue(Clients.await(Duration.ofSeconds(10), () -> {
            try {
                return admin.examineTopicRouteInfo(topic) != null;
            } catch (Exception e) {
                return false;
            }
        }), "route of " + topic);
    }

    private static int routeQueues(String topic) throws Exception {
        var route = admin.examineTopicRouteInfo(topic);
        return route.getQueueDatas().get(0).getReadQueueNums();
    }

    @Test
    void createUpdateAndDeleteTopicInBroker() throws Exception {
        String topic = Clients.unique("admtopic");
        admin.createAndUpdateTopicConfig(broker.brokerAddr, new TopicConfig(topic, 8, 8, 6));
        assertTrue(Clients.await(Duration.ofSeconds(10), () -> {
            try {
                return routeQueues(topic) == 8;
            } catch (Exception e) {
                return false;
            }
        }), "route shows the 8 queues");
        admin.createAndUpdateTopicConfig(broker.brokerAddr, new TopicConfig(topic, 2, 2, 6));
        assertTrue(Clients.await(Duration.ofSeconds(10), () -> {
            try {
                return routeQueues(topic) == 2;
            } catch (Exception e) {
                return false;
            }
        }), "route shows the update");
        var config = admin.examineTopicConfig(broker.brokerAddr, topic);
        assertEquals(topic, config.getTopicName());
        assertEquals(2, config.getWriteQueueNums());
        assertEquals(6, config.getPerm());
        admin.deleteTopicInBroker(Set.of(broker.brokerAddr), topic);
        assertTrue(Clients.await(Duration.ofSeconds(10), () -> {
            try {
                admin.examineTopicRouteInfo(topic);
                return false;
            } catch (Exception e) {
                return true;
            }
        }), "route gone after the broker deleted it");
    }

    /** DELETE_TOPIC_IN_NAMESRV (216) is not served by the embedded name server yet. */
    @Test
    void deleteTopicInBrokerThenNameServerRemovesTheRoute() throws Exception {
        String topic = Clients.unique("admnsdel");
        sendN(topic, 1);
        awaitRoute(topic);
        admin.deleteTopicInBroker(Set.of(broker.brokerAddr), topic);
        deleteTopicInNameServer(topic);
        long deadline = System.currentTimeMillis() + 10_000;
        while (true) {
            try {
                admin.examineTopicRouteInfo(topic);
            } catch (MQClientException e) {
                assertEquals(17, e.getResponseCode(), e.toString());
                break;
            }
            assertTrue(System.currentTimeMillis() < deadline, "the route outlived the deletion");
            Thread.sleep(100);
        }
    }

    /** 4.9.8 takes (addrs, cluster, topic), 5.x also (addrs, topic). */
    private static void deleteTopicInNameServer(String topic) throws Exception {
        try {
            DefaultMQAdminExt.class.getMethod("deleteTopicInNameServer", Set.class, String.class, String.class)
                .invoke(admin, Set.of(broker.namesrv), broker.clusterName, topic);
        } catch (NoSuchMethodException e) {
            DefaultMQAdminExt.class.getMethod("deleteTopicInNameServer", Set.class, String.class)
                .invoke(admin, Set.of(broker.namesrv), topic);
        } catch (java.lang.reflect.InvocationTargetException e) {
            throw (Exception) e.getCause();
        }
    }

    @Test
    void topicRoute() throws Exception {
        String topic = Clients.unique("admroute");
        sendN(topic, 1);
        awaitRoute(topic);
        var route = admin.examineTopicRouteInfo(topic);
        assertEquals(1, route.getBrokerDatas().size());
        var bd = route.getBrokerDatas().get(0);
        assertEquals(broker.brokerName, bd.getBrokerName());
        assertEquals(broker.clusterName, bd.getCluster());
        assertEquals(broker.brokerAddr, bd.getBrokerAddrs().get(0L));
        var qd = route.getQueueDatas().get(0);
        assertEquals(broker.brokerName, qd.getBrokerName());
        assertEquals(4, qd.getReadQueueNums());
        assertEquals(4, qd.getWriteQueueNums());
        assertEquals(6, qd.getPerm());
    }

    @Test
    void topicStatus() throws Exception {
        String topic = Clients.unique("admstatus");
        sendN(topic, 12);
        awaitRoute(topic);
        var stats = admin.examineTopicStats(topic);
        assertEquals(4, stats.getOffsetTable().size());
        long total = 0;
        for (var e : stats.getOffsetTable().entrySet()) {
            assertEquals(0, e.getValue().getMinOffset());
            total += e.getValue().getMaxOffset();
            if (e.getValue().getMaxOffset() > 0) {
                assertTrue(e.getValue().getLastUpdateTimestamp() > 0);
            }
        }
        assertEquals(12, total);
    }

    @Test
    void clusterList() throws Exception {
        var info = admin.examineBrokerClusterInfo();
        assertEquals(Set.of(broker.brokerName), info.getClusterAddrTable().get(broker.clusterName));
        var data = info.getBrokerAddrTable().get(broker.brokerName);
        assertEquals(broker.clusterName, data.getCluster());
        assertEquals(broker.brokerAddr, data.getBrokerAddrs().get(0L));
    }

    @Test
    void brokerRuntimeInfo() throws Exception {
        sendN(Clients.unique("admruntime"), 3);
        var kv = admin.fetchBrokerRuntimeStats(broker.brokerAddr).getTable();
        // the keys mqadmin clusterList and brokerStatus print (commitLogDiskRatio and
        // earliestMessageTimeStamp are not reported yet)
        for (String key : new String[] {"brokerVersionDesc", "brokerVersion", "msgPutTotalTodayNow",
            "msgGetTotalTodayNow", "msgPutTotalTodayMorning", "msgGetTotalTodayMorning",
            "msgPutTotalYesterdayMorning", "msgGetTotalYesterdayMorning", "putTps", "bootTimestamp",
            "pageCacheLockTimeMills"}) {
            assertNotNull(kv.get(key), key + " in " + kv.keySet());
        }
        assertTrue(Long.parseLong(kv.get("msgPutTotalTodayNow")) >= 3, kv.toString());
    }

    private static DefaultMQPushConsumer consumeSome(String topic, String group, Collector into) throws Exception {
        DefaultMQPushConsumer c = Clients.pushConsumer(namesrv(), group);
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.subscribe(topic, "*");
        c.registerMessageListener(into.listener());
        c.start();
        return c;
    }

    private static String progress(String topic, String group) throws Exception {
        StringBuilder sb = new StringBuilder();
        for (var e : admin.examineConsumeStats(group).getOffsetTable().entrySet()) {
            if (e.getKey().getTopic().equals(topic)) {
                sb.append(" q").append(e.getKey().getQueueId()).append(" broker=").append(e.getValue().getBrokerOffset())
                    .append(" consumer=").append(e.getValue().getConsumerOffset());
            }
        }
        return sb.toString();
    }

    @Test
    void consumerProgressWithLagPerQueue() throws Exception {
        String topic = Clients.unique("admprogress");
        String group = Clients.unique("gprogress");
        sendN(topic, 8);
        Collector got = new Collector();
        DefaultMQPushConsumer c = consumeSome(topic, group, got);
        try {
            assertTrue(Clients.await(Duration.ofSeconds(30), () -> got.size() >= 8));
        } finally {
            c.shutdown(); // commits its offsets
        }
        sendN(topic, 4);
        assertTrue(Clients.await(Duration.ofSeconds(15), () -> {
            try {
                var stats = admin.examineConsumeStats(group);
                long lag = 0;
                int queues = 0;
                for (var e : stats.getOffsetTable().entrySet()) {
                    if (e.getKey().getTopic().equals(topic)) {
                        queues++;
                        lag += e.getValue().getBrokerOffset() - e.getValue().getConsumerOffset();
                    }
                }
                return queues == 4 && lag == 4 && stats.computeTotalDiff() >= 4;
            } catch (Exception e) {
                return false;
            }
        }), "lag of 4 over 4 queues:" + progress(topic, group));
    }

    @Test
    void consumerConnections() throws Exception {
        String topic = Clients.unique("admconn");
        String group = Clients.unique("gconn");
        sendN(topic, 1);
        Collector got = new Collector();
        DefaultMQPushConsumer c = consumeSome(topic, group, got);
        try {
            assertTrue(Clients.await(Duration.ofSeconds(15), () -> {
                try {
                    return admin.examineConsumerConnectionInfo(group).getConnectionSet().size() == 1;
                } catch (Exception e) {
                    return false;
                }
            }));
            var cc = admin.examineConsumerConnectionInfo(group);
            var conn = cc.getConnectionSet().iterator().next();
            assertEquals(c.getDefaultMQPushConsumerImpl().getmQClientFactory().getClientId(), conn.getClientId());
            assertEquals("JAVA", conn.getLanguage().name());
            assertEquals("CONSUME_PASSIVELY", cc.getConsumeType().name());
            assertEquals("CLUSTERING", cc.getMessageModel().name());
            assertEquals("CONSUME_FROM_FIRST_OFFSET", cc.getConsumeFromWhere().name());
            assertTrue(cc.getSubscriptionTable().containsKey(topic), cc.getSubscriptionTable().keySet().toString());
            assertTrue(cc.getSubscriptionTable().containsKey("%RETRY%" + group));
        } finally {
            c.shutdown();
        }
    }

    /**
     * INVOKE_BROKER_TO_RESET_OFFSET (222) is not served yet: mqadmin resetOffsetByTime fails
     * with code 3 and the group keeps its offsets.
     */
    @Test
    void notYetResetOffsetByTimeRefused() throws Exception {
        String topic = Clients.unique("admreset");
        String group = Clients.unique("greset");
        sendN(topic, 4);
        Collector got = new Collector();
        DefaultMQPushConsumer c = consumeSome(topic, group, got);
        try {
            assertTrue(Clients.await(Duration.ofSeconds(30), () -> got.size() >= 4));
            MQClientException e = assertThrows(MQClientException.class,
                () -> admin.resetOffsetByTimestamp(topic, group, 0L, true));
            assertEquals(3, e.getResponseCode(), e.toString());
            assertTrue(e.getMessage().contains("222"), e.getMessage());
            Thread.sleep(1000);
            assertEquals(4, got.size(), "nothing consumed again");
        } finally {
            c.shutdown();
        }
    }

    // What Apache does; becomes the @Test once INVOKE_BROKER_TO_RESET_OFFSET is served.
    void resetOffsetByTimeAsApache() throws Exception {
        String topic = Clients.unique("admreset");
        String group = Clients.unique("greset");
        sendN(topic, 8);
        Collector got = new Collector();
        DefaultMQPushConsumer c = consumeSome(topic, group, got);
        try {
            assertTrue(Clients.await(Duration.ofSeconds(30), () -> got.size() >= 8));
            Thread.sleep(1500); // offsets persisted
            var table = admin.resetOffsetByTimestamp(topic, group, 0L, true);
            assertEquals(4, table.size(), table.toString());
            for (var e : table.entrySet()) {
                assertEquals(0L, e.getValue().longValue());
            }
            assertTrue(Clients.await(Duration.ofSeconds(30), () -> got.size() >= 16), "consumed again: " + got.size());
        } finally {
            c.shutdown();
        }
    }

    @Test
    void queryMessageById() throws Exception {
        String topic = Clients.unique("admview");
        Message m = new Message(topic, "TagV", "key-v", "view-me".getBytes(StandardCharsets.UTF_8));
        SendResult r = producer.send(m);
        MessageExt byOffsetId = admin.viewMessage(topic, r.getOffsetMsgId());
        assertEquals("view-me", Clients.body(byOffsetId));
        assertEquals("TagV", byOffsetId.getTags());
        // mqadmin queryMsgById passes the client's unique id: it is resolved through QUERY_MESSAGE
        // by key (UNIQ_KEY), not served yet - see NotServedYetTest.
        assertFalse(r.getMsgId().equals(r.getOffsetMsgId()));
    }


    /** The subscription-group config class: its package moved between 4.9 and 5.x. */
    private static Class<?> subscriptionGroupConfigClass() throws ClassNotFoundException {
        return Class.forName(Clients.isClient5()
            ? "org.apache.rocketmq.remoting.protocol.subscription.SubscriptionGroupConfig"
            : "org.apache.rocketmq.common.subscription.SubscriptionGroupConfig");
    }

    @Test
    void subscriptionGroupCreatedByAdminIsServedBackAndStopsConsumption() throws Exception {
        String group = Clients.unique("admsg");
        Class<?> type = subscriptionGroupConfigClass();
        Object config = type.getConstructor().newInstance();
        type.getMethod("setGroupName", String.class).invoke(config, group);
        type.getMethod("setRetryMaxTimes", int.class).invoke(config, 3);
        type.getMethod("setConsumeEnable", boolean.class).invoke(config, false);
        DefaultMQAdminExt.class.getMethod("createAndUpdateSubscriptionGroupConfig", String.class, type)
            .invoke(admin, broker.brokerAddr, config);
        Object back = DefaultMQAdminExt.class
            .getMethod("examineSubscriptionGroupConfig", String.class, String.class)
            .invoke(admin, broker.brokerAddr, group);
        assertNotNull(back, "the group's config is served back");
        assertEquals(3, type.getMethod("getRetryMaxTimes").invoke(back));
        assertEquals(false, type.getMethod("isConsumeEnable").invoke(back));
    }
}
