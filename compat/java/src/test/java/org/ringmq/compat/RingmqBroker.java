package org.ringmq.compat;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;

/**
 * One {@code ringmq-server} process on port 0 with a temporary store and its embedded name
 * server. Started from the binary named by the system property {@code ringmq.server}; reads
 * the two {@code listening ...} lines from its stdout, then waits (bounded) until the name
 * server serves the broker in its cluster list. {@link #close()} kills it and removes the store.
 */
public final class RingmqBroker implements AutoCloseable {
    public final String namesrv;
    public final String brokerAddr;
    public final String brokerName;
    public final String clusterName;
    private final Process process;
    private final Path store;

    private RingmqBroker(Process process, Path store, String namesrv, String brokerAddr,
                         String brokerName, String clusterName) {
        this.process = process;
        this.store = store;
        this.namesrv = namesrv;
        this.brokerAddr = brokerAddr;
        this.brokerName = brokerName;
        this.clusterName = clusterName;
    }

    public static RingmqBroker start() throws Exception {
        return start(List.of(), null, null);
    }

    /** Starts a broker with {@code extraArgs} after the defaults (a flag given twice takes its last value). */
    public static RingmqBroker start(String... extraArgs) throws Exception {
        return start(List.of(extraArgs), null, null);
    }

    /**
     * A broker registering with the name server {@code externalNamesrv} (none embedded) when
     * it is not null, with {@code extraArgs} after the defaults, on {@code existingStore} (a
     * restart) or a new temporary store. Does not wait for the registration when external.
     */
    public static RingmqBroker start(List<String> extraArgs, String externalNamesrv,
                                     Path existingStore) throws Exception {
        Path store = existingStore != null ? existingStore
            : Files.createTempDirectory("ringmq-java-compat");
        List<String> command = new ArrayList<>(List.of(binary(),
            "--listen", "127.0.0.1:0", "--store", store.toString(),
            "--segment-size", "16777216",
            // The store is on the machine's shared disk, whose fullness is not the test's:
            // no send refused, no segment deleted because others filled it.
            "--disk-warning-percent", "100", "--disk-max-used-percent", "100",
            "--disk-clean-forcibly-percent", "100"));
        if (externalNamesrv == null) {
            command.addAll(List.of("--namesrv-listen", "127.0.0.1:0"));
        } else {
            command.addAll(List.of("--namesrv", externalNamesrv));
        }
        command.addAll(extraArgs);
        ProcessBuilder builder = new ProcessBuilder(command);
        builder.redirectError(ProcessBuilder.Redirect.appendTo(store.resolve("broker.stderr").toFile()));
        Process process = builder.start();
        try {
            String[] pair = readAddresses(process, store, externalNamesrv == null, true);
            if (externalNamesrv != null) {
                return new RingmqBroker(process, store, externalNamesrv, pair[1], null, null);
            }
            String[] names = awaitRegistration(pair[0]);
            return new RingmqBroker(process, store, pair[0], pair[1], names[0], names[1]);
        } catch (Exception e) {
            process.destroyForcibly();
            throw e;
        }
    }

    /** A name server alone ({@code ringmq-server namesrv}); {@link #namesrv} is its address. */
    public static RingmqBroker namesrvOnly() throws Exception {
        Path dir = Files.createTempDirectory("ringmq-java-namesrv");
        ProcessBuilder builder = new ProcessBuilder(binary(), "namesrv", "--listen", "127.0.0.1:0");
        builder.redirectError(dir.resolve("namesrv.stderr").toFile());
        Process process = builder.start();
        try {
            String[] pair = readAddresses(process, dir, true, false);
            return new RingmqBroker(process, dir, pair[0], null, null, null);
        } catch (Exception e) {
            process.destroyForcibly();
            throw e;
        }
    }

    private static String binary() {
        String binary = System.getProperty("ringmq.server");
        if (binary == null || !new File(binary).canExecute()) {
            throw new IllegalStateException("system property ringmq.server must name the "
                + "ringmq-server binary (cargo build -p ringmq-server); got " + binary);
        }
        return binary;
    }

    /**
     * Reads the {@code listening namesrv} (when {@code wantNamesrv}) and {@code listening
     * broker} lines (at most 30 s), then keeps draining stdout so the process never blocks on
     * a full pipe. A name-server-only process prints no broker line.
     */
    private static String[] readAddresses(Process process, Path dir, boolean wantNamesrv,
                                          boolean wantBroker) throws Exception {
        BufferedReader out = new BufferedReader(
            new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
        CompletableFuture<String[]> addrs = CompletableFuture.supplyAsync(() -> {
            String namesrv = null;
            String broker = null;
            try {
                String line;
                while (((wantNamesrv && namesrv == null) || (wantBroker && broker == null))
                        && (line = out.readLine()) != null) {
                    if (line.startsWith("listening namesrv ")) {
                        namesrv = line.substring("listening namesrv ".length()).trim();
                    } else if (line.startsWith("listening broker ")) {
                        broker = line.substring("listening broker ".length()).trim();
                    }
                }
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
            return new String[] {namesrv, broker};
        });
        String[] pair = addrs.get(30, TimeUnit.SECONDS);
        if ((wantNamesrv && pair[0] == null) || (wantBroker && pair[1] == null)) {
            throw new IllegalStateException("ringmq-server exited before printing its addresses; "
                + "see the stderr file in " + dir);
        }
        Thread drain = new Thread(() -> {
            try {
                while (out.readLine() != null) {
                    // discard
                }
            } catch (IOException ignored) {
                // process gone
            }
        }, "ringmq-stdout");
        drain.setDaemon(true);
        drain.start();
        // A test JVM that ends without close() (a surefire timeout) still stops the process.
        Runtime.getRuntime().addShutdownHook(new Thread(process::destroyForcibly));
        return pair;
    }

    /** Polls the name server's cluster list until the broker is in it (at most 20 s). */
    private static String[] awaitRegistration(String namesrv) throws Exception {
        DefaultMQAdminExt admin = Clients.admin(namesrv);
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            Exception last = null;
            while (System.nanoTime() < deadline) {
                try {
                    var info = admin.examineBrokerClusterInfo();
                    for (var cluster : info.getClusterAddrTable().entrySet()) {
                        for (String name : cluster.getValue()) {
                            return new String[] {name, cluster.getKey()};
                        }
                    }
                } catch (Exception e) {
                    last = e;
                }
                Thread.sleep(100);
            }
            throw new IllegalStateException("the broker never appeared in the cluster list", last);
        } finally {
            admin.shutdown();
        }
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** SIGKILL, keeping the store for a restart ({@link #start(List, String, Path)}). */
    public Path kill9() throws Exception {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
        return store;
    }

    @Override
    public void close() throws Exception {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
        try (Stream<Path> walk = Files.walk(store)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}
