package org.ringmq.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendCallback;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class ProducerTest extends BrokerTest {
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

    private static Message msg(String topic, String body) {
        return new Message(topic, body.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void syncSend() throws Exception {
        String topic = Clients.unique("sync");
        SendResult result = producer.send(msg(topic, "sync-1"));
        assertEquals(SendStatus.SEND_OK, result.getSendStatus());
        assertNotNull(result.getMsgId());
        assertNotNull(result.getOffsetMsgId());
        assertEquals(topic, result.getMessageQueue().getTopic());
        List<MessageExt> read = Clients.readAll(namesrv(), topic, 1, Duration.ofSeconds(10));
        assertEquals(Set.of("sync-1"), Clients.bodies(read));
        assertEquals(result.getMsgId(), read.get(0).getMsgId());
    }

    @Test
    void asyncSend() throws Exception {
        String topic = Clients.unique("async");
        producer.send(msg(topic, "warm"));
        List<CompletableFuture<SendResult>> futures = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            CompletableFuture<SendResult> f = new CompletableFuture<>();
            producer.send(msg(topic, "async-" + i), new SendCallback() {
                @Override
                public void onSuccess(SendResult sendResult) {
                    f.complete(sendResult);
                }

                @Override
                public void onException(Throwable e) {
                    f.completeExceptionally(e);
                }
            });
            futures.add(f);
        }
        for (CompletableFuture<SendResult> f : futures) {
            assertEquals(SendStatus.SEND_OK, f.get(10, TimeUnit.SECONDS).getSendStatus());
        }
        assertEquals(21, Clients.readAll(namesrv(), topic, 21, Duration.ofSeconds(10)).size());
    }

    @Test
    void onewaySend() throws Exception {
        String topic = Clients.unique("oneway");
        producer.send(msg(topic, "warm"));
        for (int i = 0; i < 5; i++) {
            producer.sendOneway(msg(topic, "oneway-" + i));
        }
        Set<String> expected = Set.of("warm", "oneway-0", "oneway-1", "oneway-2", "oneway-3", "oneway-4");
        assertEquals(expected, Clients.bodies(Clients.readAll(namesrv(), topic, 6, Duration.ofSeconds(10))));
    }

    @Test
    void batchSend() throws Exception {
        String topic = Clients.unique("batch");
        producer.send(msg(topic, "warm"));
        List<Message> batch = new ArrayList<>();
        Set<String> expected = new HashSet<>();
        for (int i = 0; i < 10; i++) {
            batch.add(msg(topic, "batch-" + i));
            expected.add("batch-" + i);
        }
        SendResult result = producer.send(batch);
        assertEquals(SendStatus.SEND_OK, result.getSendStatus());
        assertEquals(10, result.getMsgId().split(",").length, "one id per message: " + result.getMsgId());
        List<MessageExt> read = Clients.readAll(namesrv(), topic, 11, Duration.ofSeconds(10));
        Set<String> bodies = Clients.bodies(read);
        assertTrue(bodies.containsAll(expected), "got " + bodies);
        // A batch goes to one queue at consecutive offsets.
        List<MessageExt> inBatch = read.stream().filter(m -> Clients.body(m).startsWith("batch-"))
            .sorted(Comparator.comparingLong(MessageExt::getQueueOffset)).toList();
        assertEquals(1, inBatch.stream().map(MessageExt::getQueueId).distinct().count());
        for (int i = 1; i < inBatch.size(); i++) {
            assertEquals(inBatch.get(i - 1).getQueueOffset() + 1, inBatch.get(i).getQueueOffset());
        }
    }

    @Test
    void keysTagsAndUserProperties() throws Exception {
        String topic = Clients.unique("props");
        Message m = new Message(topic, "TagA", "order-42 order-43", "with-props".getBytes(StandardCharsets.UTF_8));
        m.putUserProperty("color", "blue");
        m.putUserProperty("size", "10");
        assertEquals(SendStatus.SEND_OK, producer.send(m).getSendStatus());
        List<MessageExt> read = Clients.readAll(namesrv(), topic, 1, Duration.ofSeconds(10));
        assertEquals(1, read.size());
        MessageExt got = read.get(0);
        assertEquals("TagA", got.getTags());
        assertEquals("order-42 order-43", got.getKeys());
        assertEquals("blue", got.getUserProperty("color"));
        assertEquals("10", got.getUserProperty("size"));
        assertTrue(got.getBornTimestamp() > 0 && got.getStoreTimestamp() >= got.getBornTimestamp() - 1000);
    }

    @Test
    void sendToAutoCreatedTopic() throws Exception {
        String topic = Clients.unique("auto");
        assertEquals(SendStatus.SEND_OK, producer.send(msg(topic, "auto")).getSendStatus());
        List<MessageQueue> queues = producer.fetchPublishMessageQueues(topic);
        assertEquals(4, queues.size(), "auto-created from TBW102 with 4 queues: " + queues);
    }

    @Test
    void orderlySendByKeyWithSelector() throws Exception {
        String topic = Clients.unique("orderly");
        producer.send(msg(topic, "warm"));
        String[] keys = {"alice", "bob", "carol"};
        for (int i = 0; i < 30; i++) {
            String key = keys[i % keys.length];
            Message m = new Message(topic, "T", key, (key + "-" + i).getBytes(StandardCharsets.UTF_8));
            SendResult r = producer.send(m, (mqs, message, arg) ->
                mqs.get(Math.floorMod(arg.hashCode(), mqs.size())), key);
            assertEquals(SendStatus.SEND_OK, r.getSendStatus());
        }
        List<MessageExt> read = Clients.readAll(namesrv(), topic, 31, Duration.ofSeconds(10));
        for (String key : keys) {
            List<MessageExt> ofKey = read.stream().filter(m -> key.equals(m.getKeys()))
                .sorted(Comparator.comparingLong(MessageExt::getQueueOffset)).toList();
            assertEquals(10, ofKey.size());
            assertEquals(1, ofKey.stream().map(MessageExt::getQueueId).distinct().count(), key + " stays in one queue");
            List<Integer> seq = ofKey.stream().map(m -> Integer.parseInt(Clients.body(m).split("-")[1])).toList();
            List<Integer> sorted = new ArrayList<>(seq);
            sorted.sort(Integer::compare);
            assertEquals(sorted, seq, key + " in send order");
        }
    }

    @Test
    void compressedBodyOver4KiB() throws Exception {
        String topic = Clients.unique("zip");
        StringBuilder sb = new StringBuilder();
        while (sb.length() < 64 * 1024) {
            sb.append("ringmq compresses nothing itself; the client zips bodies over 4 KiB. ");
        }
        String body = sb.toString();
        assertEquals(SendStatus.SEND_OK, producer.send(msg(topic, body)).getSendStatus());
        List<MessageExt> read = Clients.readAll(namesrv(), topic, 1, Duration.ofSeconds(10));
        assertEquals(1, read.size());
        assertEquals(body, Clients.body(read.get(0)));
        assertFalse(read.get(0).getStoreSize() > body.length(), "stored compressed: " + read.get(0).getStoreSize());
    }
}
