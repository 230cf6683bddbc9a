// The development and test database: mongo-java-server 1.47.0 on 127.0.0.1.
// Started by tools/devdb, which checks the arguments first and passes them
// on in this form:
//
//   DevDb [--port N] [--memory | --data FILE] [--oplog] [--verbose]
//
// Prints exactly one line on stdout, "READY mongodb://127.0.0.1:PORT/", once
// it accepts connections; everything else goes to stderr. SIGTERM and SIGINT
// stop it cleanly with exit status 0: a shutdown hook closes the clients and
// the backend, and with it the H2 file, which is then consistent.
//
// Every command passes through FailCommand first: MongoDB's configureFailPoint
// command and its failCommand failpoint, for fault injection in tests.
import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.bson.Document;

import io.netty.channel.Channel;

import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.util.concurrent.CountDownLatch;

public final class DevDb {
    private static void usageError(String message) {
        System.err.println("devdb: " + message);
        System.err.println("Try 'tools/devdb --help'.");
        System.exit(2);
    }

    public static void main(String[] args) throws Exception {
        // Only the READY line may reach stdout: keep the real one for it and
        // send anything a library prints there to stderr instead.
        PrintStream stdout = System.out;
        System.setOut(System.err);

        int port = 27017;
        String data = null;
        boolean memory = false;
        boolean oplog = false;
        boolean verbose = false;

        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            switch (arg) {
                case "--memory":
                    memory = true;
                    break;
                case "--oplog":
                    oplog = true;
                    break;
                case "--verbose":
                    verbose = true;
                    break;
                case "--port":
                case "--data":
                    if (i + 1 >= args.length) {
                        usageError(arg + " needs a value");
                    }
                    String value = args[++i];
                    if (arg.equals("--data")) {
                        if (value.isEmpty()) {
                            usageError("--data needs a file name");
                        }
                        data = value;
                    } else {
                        try {
                            port = Integer.parseInt(value);
                        } catch (NumberFormatException e) {
                            port = -1;
                        }
                        if (port < 0 || port > 65535) {
                            usageError("--port: '" + value + "' is not a port from 0 to 65535");
                        }
                    }
                    break;
                default:
                    usageError("unknown option '" + arg + "'");
            }
        }
        if (memory && data != null) {
            usageError("give --memory or --data FILE, not both");
        }

        // slf4j-simple reads these when the first logger is made, below.
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", verbose ? "info" : "warn");
        System.setProperty("org.slf4j.simpleLogger.showDateTime", "true");
        System.setProperty("org.slf4j.simpleLogger.dateTimeFormat", "HH:mm:ss.SSS");
        if (!verbose) {
            // This logger writes an ERROR with a stack trace for every command
            // that fails, "ns not found" on a drop or a duplicate key alike;
            // the client gets the same error in its reply.
            System.setProperty("org.slf4j.simpleLogger.log.de.bwaldvogel.mongo.wire.MongoWireProtocolHandler", "off");
        }

        // Both backends route every command through
        // AbstractMongoBackend.handleCommand (all but ping and serverStatus
        // sent as OP_QUERY, which the server answers itself); the override
        // hands it to FailCommand with the backend's own handling to run.
        FailCommand failCommand = new FailCommand();
        MongoBackend backend;
        try {
            backend = data != null
                ? new H2Backend(data) {
                    @Override
                    public Document handleCommand(Channel channel, String db, String command, Document query) {
                        return failCommand.handle(channel, db, command, query,
                            () -> super.handleCommand(channel, db, command, query));
                    }
                }
                : new MemoryBackend() {
                    @Override
                    public Document handleCommand(Channel channel, String db, String command, Document query) {
                        return failCommand.handle(channel, db, command, query,
                            () -> super.handleCommand(channel, db, command, query));
                    }
                };
        } catch (RuntimeException e) {
            // H2 says "The file is locked" when another server has it open.
            System.err.println("devdb: cannot open the data file '" + data + "': " + e.getMessage());
            System.exit(1);
            return;
        }
        if (oplog) {
            backend.enableOplog();
        }

        MongoServer server = new MongoServer(backend);
        try {
            // Returns once the socket listens: connections are accepted from here on.
            server.bind("127.0.0.1", port);
        } catch (Exception e) {
            // Netty rethrows a BindException, checked or not, from here; the
            // server has shut down (and closed the backend) by then.
            System.err.println("devdb: cannot listen on 127.0.0.1:" + port + ": " + e.getMessage());
            System.exit(1);
        }
        InetSocketAddress address = server.getLocalAddress();

        // Whatever ends the JVM (SIGTERM, SIGINT, SIGHUP, System.exit) closes
        // the clients and the backend first, so an H2 file is left consistent.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                server.shutdownNow();
            } catch (Throwable e) {
                System.err.println("devdb: stopping the server failed: " + e);
                Runtime.getRuntime().halt(1);
            }
        }, "devdb-shutdown"));

        // SIGTERM and SIGINT are a request to stop, not a failure: exit 0
        // (the JVM's own handlers would exit 143 and 130).
        for (String name : new String[] {"TERM", "INT"}) {
            sun.misc.Signal.handle(new sun.misc.Signal(name), signal -> System.exit(0));
        }

        stdout.println("READY mongodb://127.0.0.1:" + address.getPort() + "/");
        stdout.flush();

        new CountDownLatch(1).await();
    }
}
