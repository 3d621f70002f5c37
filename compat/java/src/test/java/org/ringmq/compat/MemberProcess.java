package org.ringmq.compat;

import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A {@link MemberMain} consumer in a JVM of its own (so a test can kill it with SIGKILL), with
 * the number of queues it last said it holds.
 */
public final class MemberProcess implements AutoCloseable {
    public final Process process;
    private final AtomicInteger held = new AtomicInteger(-1);

    private MemberProcess(Process process) {
        this.process = process;
    }

    /** Starts a member of {@code group} on {@code topic}; {@code orderly} for an orderly listener. */
    public static MemberProcess start(String namesrv, String topic, String group, boolean orderly)
            throws Exception {
        String javaBin = System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
        List<String> cmd = new ArrayList<>(List.of(javaBin, "-cp", System.getProperty("java.class.path")));
        for (String p : List.of("rocketmq.client.rebalance.waitInterval", "rocketmq.client.logRoot",
            "rocketmq.client.logLevel", "compat.profile")) {
            if (System.getProperty(p) != null) {
                cmd.add("-D" + p + "=" + System.getProperty(p));
            }
        }
        cmd.addAll(List.of(MemberMain.class.getName(), namesrv, topic, group));
        if (orderly) {
            cmd.add("orderly");
        }
        MemberProcess member = new MemberProcess(new ProcessBuilder(cmd).redirectErrorStream(true).start());
        Thread reader = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(
                    new InputStreamReader(member.process.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    if (line.startsWith("queues ")) {
                        member.held.set(Integer.parseInt(line.substring(7).trim()));
                    }
                }
            } catch (Exception ignored) {
                // process gone
            }
        });
        reader.setDaemon(true);
        reader.start();
        return member;
    }

    /** The queues it last reported holding; -1 before its first report. */
    public int held() {
        return held.get();
    }

    /** SIGKILL: no unregister, no unlock; the socket just closes. */
    public void kill() {
        process.destroyForcibly();
    }

    @Override
    public void close() {
        process.destroyForcibly();
    }
}
