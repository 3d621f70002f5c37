package org.ringmq.compat;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;

/**
 * A clustering push consumer in a JVM of its own, for the tests that kill a member with
 * SIGKILL. Arguments: namesrv topic group [orderly]. With "orderly" its listener is a
 * {@code MessageListenerOrderly} (it holds a queue only while it holds the queue's broker
 * lock). Prints "started" and then a "queues N" line every 200 ms with the number of queues
 * it holds.
 */
public final class MemberMain {
    private MemberMain() {
    }

    public static void main(String[] args) throws Exception {
        // The test JVM holds our stdin: once it is gone (even killed), so are we.
        Thread parentWatch = new Thread(() -> {
            try {
                while (System.in.read() >= 0) {
                    // nothing is sent
                }
            } catch (java.io.IOException ignored) {
                // parent gone
            }
            Runtime.getRuntime().halt(1);
        }, "parent-watch");
        parentWatch.setDaemon(true);
        parentWatch.start();
        DefaultMQPushConsumer consumer = Clients.pushConsumer(args[0], args[2]);
        consumer.subscribe(args[1], "*");
        if (args.length > 3 && args[3].equals("orderly")) {
            consumer.registerMessageListener((org.apache.rocketmq.client.consumer.listener.MessageListenerOrderly)
                (msgs, ctx) -> org.apache.rocketmq.client.consumer.listener.ConsumeOrderlyStatus.SUCCESS);
        } else {
            consumer.registerMessageListener((org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently)
                (msgs, ctx) -> ConsumeConcurrentlyStatus.CONSUME_SUCCESS);
        }
        consumer.start();
        System.out.println("started");
        while (true) {
            long held = consumer.getDefaultMQPushConsumerImpl().getRebalanceImpl().getProcessQueueTable().keySet()
                .stream().filter(mq -> mq.getTopic().equals(args[1])).count();
            System.out.println("queues " + held);
            System.out.flush();
            Thread.sleep(200);
        }
    }
}
