// The development and test database: mongo-java-server 1.47.0 on 127.0.0.1.
// Started by tools/devdb, which checks the arguments first and passes them
// on in this form:
//
//   DevDb [--port N] [--memory | --data FILE] [--oplog] [--replset NAME] [--verbose]
//
// Prints exactly one line on stdout, "READY mongodb://127.0.0.1:PORT/", once
// it accepts connections; everything else goes to stderr. SIGTERM and SIGINT
// stop it cleanly with exit status 0: a shutdown hook closes the clients and
// the backend, and with it the H2 file, which is then consistent.
//
// Every command passes through handle() below: the handshake, with hello and
// with --replset that of a replica set primary (ReplicaSet), the command log
// (CommandLog), MongoDB's configureFailPoint command and its failCommand
// failpoint (FailCommand), and createIndexes as MongoDB checks it (Indexes).
// The databases it opens keep unique indexes with a partialFilterExpression
// partial (Indexes).
import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.h2.H2Database;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.backend.memory.MemoryDatabase;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;

import io.netty.channel.Channel;

import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.function.Supplier;

public final class DevDb {
    /** The backend's own handling of `command` in the database at hand. */
    interface Backend {
        Document run(String command, Document query);
    }

    // Made in main(), once the logging is set up: FailCommand makes a logger.
    private static ReplicaSet replicaSet;
    private static CommandLog commandLog;
    private static FailCommand failCommand;
    private static Indexes indexes;
    private static ChangeStreams changeStreams;
    private static boolean oplogEnabled;

    /**
     * Runs one command: `backend` runs a command in the same database with
     * the backend's own handling (`run` is that of this one).
     */
    private static Document handle(Channel channel, String db, String command, Document query,
                                   Backend backend, Supplier<Document> run) {
        if (ReplicaSet.isHandshake(command)) {
            // Remembers the client's appName, fails nothing.
            return failCommand.handle(channel, db, command, query,
                () -> replicaSet.handshake(channel, command, query, backend));
        }
        if (command.equals(CommandLog.COMMAND)) {
            return commandLog.command(db, query);
        }
        if (!command.equals("configureFailPoint")) {
            commandLog.add(channel, db, command, query);
        }
        if (!oplogEnabled && ChangeStreams.opensStream(command, query)) {
            // Without an oplog mongo-java-server fails a change stream with
            // "Unknown error: null"; a MongoDB standalone, which has none
            // either, answers 40573, which clients read to fall back.
            return failCommand.handle(channel, db, command, query, () -> {
                throw new MongoServerError(40573, "Location40573",
                    "The $changeStream stage is only supported on replica sets");
            });
        }
        Supplier<Document> act = run;
        if (command.equals("createIndexes")) {
            act = () -> indexes.createIndexes(query, backend, run);
        } else if (ChangeStreams.opensStream(command, query)) {
            act = () -> changeStreams.open(run);
        } else if (changeStreams.isStreamGetMore(query)) {
            act = () -> changeStreams.getMore(query, run);
        } else if (command.equals("killCursors")) {
            changeStreams.killed(query);
        }
        try {
            return failCommand.handle(channel, db, command, query, act);
        } finally {
            if (ChangeStreams.isWrite(command)) {
                changeStreams.wrote();
            }
        }
    }

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
        String replSet = null;

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
                case "--replset":
                    if (i + 1 >= args.length) {
                        usageError(arg + " needs a value");
                    }
                    String value = args[++i];
                    if (arg.equals("--replset")) {
                        if (!ReplicaSet.isValidName(value)) {
                            usageError("--replset: '" + value + "' is not a replica set name: use letters, digits, "
                                + "'.', '_' and '-'");
                        }
                        replSet = value;
                    } else if (arg.equals("--data")) {
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
        // hands it to handle() with the backend's own handling to run. The
        // databases they open are the backend's own with the partial unique
        // indexes of Indexes.
        replicaSet = new ReplicaSet(replSet);
        commandLog = new CommandLog();
        failCommand = new FailCommand();
        indexes = new Indexes();
        changeStreams = new ChangeStreams();
        MongoBackend backend;
        try {
            backend = data != null
                ? new H2Backend(data) {
                    @Override
                    public Document handleCommand(Channel channel, String db, String command, Document query) {
                        return handle(channel, db, command, query,
                            (c, q) -> super.handleCommand(channel, db, c, q),
                            () -> super.handleCommand(channel, db, command, query));
                    }

                    @Override
                    protected MongoDatabase openOrCreateDatabase(String name) {
                        return new H2Database(name, getMvStore(), getCursorRegistry()) {
                            @Override
                            protected void addIndex(Document description) {
                                Indexes.adding(description, () -> super.addIndex(description));
                            }

                            @Override
                            protected Index<Object> openOrCreateUniqueIndex(String collection, String index,
                                                                            List<IndexKey> keys, boolean sparse) {
                                return Indexes.partial(super.openOrCreateUniqueIndex(collection, index, keys, sparse),
                                    getDatabaseName() + "." + collection, () -> getOrCreateIndexesCollection());
                            }
                        };
                    }
                }
                : new MemoryBackend() {
                    @Override
                    public Document handleCommand(Channel channel, String db, String command, Document query) {
                        return handle(channel, db, command, query,
                            (c, q) -> super.handleCommand(channel, db, c, q),
                            () -> super.handleCommand(channel, db, command, query));
                    }

                    @Override
                    public MemoryDatabase openOrCreateDatabase(String name) {
                        return new MemoryDatabase(name, getCursorRegistry()) {
                            @Override
                            protected void addIndex(Document description) {
                                Indexes.adding(description, () -> super.addIndex(description));
                            }

                            @Override
                            protected Index<Integer> openOrCreateUniqueIndex(String collection, String index,
                                                                             List<IndexKey> keys, boolean sparse) {
                                return Indexes.partial(super.openOrCreateUniqueIndex(collection, index, keys, sparse),
                                    getDatabaseName() + "." + collection, () -> getOrCreateIndexesCollection());
                            }
                        };
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
        oplogEnabled = oplog;

        // MongoServer's server, but a change stream's getMore may wait for
        // events as on a real server, on a thread of its own (DevServer).
        DevServer server = new DevServer(backend, changeStreams::isStreamGetMore);
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
