package org.ringmq.compat;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * kill -9 of a SYNC_MASTER under load (issue 13): a consumer group started after the kill
 * reads every message the master acknowledged, from the slave. The name server is a process
 * of its own, so routes outlive the master, as in production.
 */
@Timeout(180)
class MasterKillTest {

    /** A free port whose successor is free too (the HA port defaults to the port + 1). */
    private static int freePortPair() throws Exception {
        for (int i = 0; i < 50; i++) {
            int port;
            try (ServerSocket first = new ServerSocket(0)) {
                port = first.getLocalPort();
            }
            try (ServerSocket next = new ServerSocket(port + 1)) {
                return port;
            } catch (java.io.IOException taken) {
                // try another
            }
        }
        throw new IllegalStateException("no two adjacent free ports in 50 tries");
    }

    @Test
    void aGroupStartedAfterTheMasterIsKilledReadsEveryAcknowledgedMessageFromTheSlave()
            throws Exception {
        try (RingmqBroker namesrv = RingmqBroker.namesrvOnly()) {
            String ns = namesrv.namesrv;
            int port = freePortPair();
            RingmqBroker master = RingmqBroker.start(List.of("--listen", "127.0.0.1:" + port,
                "--broker-name", "jkilled", "--replication", "sync", "--shards", "2"), ns, null);
            RingmqBroker slave = null;
            DefaultMQAdminExt admin = null;
            DefaultMQProducer producer = null;
            DefaultMQPushConsumer consumer = null;
            try {
                slave = RingmqBroker.start(List.of("--broker-name", "jkilled", "--role", "slave",
                    "--broker-id", "1", "--master", master.brokerAddr, "--shards", "2"), ns, null);
                admin = Clients.admin(ns);
                String topic = Clients.unique("kill");
                admin.createAndUpdateTopicConfig(master.brokerAddr, new TopicConfig(topic, 4, 4, 6));
                // Routed through both: the slave registers the topic once it copied it (3 s).
                DefaultMQAdminExt routes = admin;
                assertTrue(Clients.await(Duration.ofSeconds(30), () -> {
                    try {
                        var route = routes.examineTopicRouteInfo(topic);
                        return route.getBrokerDatas().stream()
                            .anyMatch(b -> b.getBrokerAddrs().containsKey(1L)
                                && b.getBrokerAddrs().containsKey(0L));
                    } catch (Exception notYet) {
                        return false;
                    }
                }), "the topic was never routed through master and slave");

                producer = Clients.producer(ns);
                producer.setRetryTimesWhenSendFailed(0);
                producer.setSendMsgTimeout(3000);
                Set<String> acked = new TreeSet<>();
                int sent = 0;
                int failed = 0;
                long loadEnd = System.nanoTime() + Duration.ofSeconds(2).toNanos();
                long stopAt = loadEnd + Duration.ofSeconds(2).toNanos();
                long killedAt = 0;
                while (System.nanoTime() < stopAt && sent < 100_000) {
                    if (killedAt == 0 && System.nanoTime() >= loadEnd) {
                        master.kill9();
                        killedAt = System.nanoTime();
                    }
                    String body = "jkill-" + sent++;
                    try {
                        SendResult result = producer.send(
                            new Message(topic, body.getBytes(StandardCharsets.UTF_8)));
                        if (result.getSendStatus() == SendStatus.SEND_OK) {
                            acked.add(body);
                        } else {
                            failed++;
                        }
                    } catch (Exception e) {
                        failed++;
                    }
                }
                assertTrue(killedAt != 0, "the master was killed");
                assertTrue(acked.size() > 20, "too little load before the kill: " + acked.size());

                Collector got = new Collector();
                consumer = Clients.pushConsumer(ns, Clients.unique("kill_after"));
                consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
                consumer.subscribe(topic, "*");
                consumer.registerMessageListener(got.listener());
                consumer.start();
                boolean all = got.awaitBodies(acked, Duration.ofSeconds(90));
                double seconds = (System.nanoTime() - killedAt) / 1e9;
                Set<String> missing = new HashSet<>(acked);
                missing.removeAll(got.bodies());
                System.out.printf("master kill (Java client): sent %d, acknowledged %d, failed %d; "
                    + "new group read %d of them (%d deliveries) %.1f s after the kill%n",
                    sent, acked.size(), failed, acked.size() - missing.size(), got.size(), seconds);
                assertTrue(all, missing.size() + " acknowledged messages never read from the slave, e.g. "
                    + missing.stream().limit(5).toList());
            } finally {
                if (consumer != null) {
                    consumer.shutdown();
                }
                if (producer != null) {
                    producer.shutdown();
                }
                if (admin != null) {
                    admin.shutdown();
                }
                if (slave != null) {
                    slave.close();
                }
                master.close();
            }
        }
    }
}
