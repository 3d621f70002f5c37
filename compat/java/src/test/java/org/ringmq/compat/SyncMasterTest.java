package org.ringmq.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Set;

import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A SYNC_MASTER ({@code --replication sync}) without a slave stores a send but answers
 * SLAVE_NOT_AVAILABLE: the client reports it as the SendResult's status (not an exception),
 * with the message ids and queue of a stored message.
 */
@Timeout(90)
class SyncMasterTest {
    @Test
    void syncMasterWithoutSlaveReportsSlaveNotAvailable() throws Exception {
        try (RingmqBroker broker = RingmqBroker.start("--replication", "sync")) {
            DefaultMQProducer producer = Clients.producer(broker.namesrv);
            try {
                String topic = Clients.unique("syncmaster");
                Message msg = new Message(topic, "unreplicated".getBytes(StandardCharsets.UTF_8));
                SendResult result = producer.send(msg);
                assertEquals(SendStatus.SLAVE_NOT_AVAILABLE, result.getSendStatus());
                assertNotNull(result.getMsgId());
                assertNotNull(result.getOffsetMsgId());
                assertEquals(topic, result.getMessageQueue().getTopic());
                // Stored on the master all the same, as in RocketMQ.
                List<MessageExt> read = Clients.readAll(broker.namesrv, topic, 1, Duration.ofSeconds(10));
                assertEquals(Set.of("unreplicated"), Clients.bodies(read));
            } finally {
                producer.shutdown();
            }
        }
    }
}
