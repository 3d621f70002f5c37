package org.ringmq.compat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.common.message.MessageExt;

/** A concurrent listener that keeps what it got. */
public final class Collector {
    private final List<MessageExt> got = new ArrayList<>();

    public MessageListenerConcurrently listener() {
        return (msgs, ctx) -> {
            synchronized (got) {
                got.addAll(msgs);
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        };
    }

    public List<MessageExt> messages() {
        synchronized (got) {
            return new ArrayList<>(got);
        }
    }

    public Set<String> bodies() {
        return Clients.bodies(messages());
    }

    public int size() {
        synchronized (got) {
            return got.size();
        }
    }

    /** Waits until every one of {@code expected} was received (bounded). */
    public boolean awaitBodies(Set<String> expected, Duration bound) throws InterruptedException {
        return Clients.await(bound, () -> bodies().containsAll(expected));
    }
}
