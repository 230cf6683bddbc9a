// The development and test database: mongo-java-server on 127.0.0.1.
// Prints exactly one line on stdout, "READY mongodb://127.0.0.1:PORT/",
// once it accepts connections; everything else goes to stderr.
import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;

import java.net.InetSocketAddress;
import java.util.concurrent.CountDownLatch;

public final class DevDb {
    private static final String USAGE =
        "Usage: tools/devdb [--port N] [--memory | --data FILE] [--oplog]\n"
        + "\n"
        + "Runs mongo-java-server 1.47.0, a MongoDB wire-protocol server, on 127.0.0.1.\n"
        + "\n"
        + "  --port N      port to listen on; 0 picks a free one (default: 27017)\n"
        + "  --memory      keep data in memory only (the default)\n"
        + "  --data FILE   keep data in the H2 file FILE, across restarts\n"
        + "  --oplog       enable the oplog, so change streams work (it grows without bound)\n"
        + "  --help        show this help\n"
        + "\n"
        + "Prints 'READY mongodb://127.0.0.1:PORT/' on stdout once it accepts connections.\n"
        + "SIGTERM or SIGINT stops it cleanly (an H2 file is closed consistent).\n";

    private static void usageError(String message) {
        System.err.println("devdb: " + message);
        System.err.println("Try 'tools/devdb --help'.");
        System.exit(2);
    }

    public static void main(String[] args) throws Exception {
        int port = 27017;
        String data = null;
        boolean memory = false;
        boolean oplog = false;

        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            switch (arg) {
                case "--help":
                    System.out.print(USAGE);
                    return;
                case "--memory":
                    memory = true;
                    break;
                case "--oplog":
                    oplog = true;
                    break;
                case "--port":
                case "--data":
                    if (i + 1 >= args.length) {
                        usageError(arg + " needs a value");
                    }
                    String value = args[++i];
                    if (arg.equals("--data")) {
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

        MongoBackend backend = data != null ? new H2Backend(data) : new MemoryBackend();
        if (oplog) {
            backend.enableOplog();
        }
        MongoServer server = new MongoServer(backend);
        try {
            server.bind("127.0.0.1", port);
        } catch (Exception e) {
            // Netty rethrows a BindException, checked or not, from here.
            System.err.println("devdb: cannot listen on 127.0.0.1:" + port + ": " + e.getMessage());
            System.exit(1);
        }
        InetSocketAddress address = server.getLocalAddress();

        // SIGTERM and SIGINT are a request to stop, not a failure: close the
        // connections and the backend (and with it the H2 store), exit 0.
        CountDownLatch stop = new CountDownLatch(1);
        for (String name : new String[] {"TERM", "INT"}) {
            sun.misc.Signal.handle(new sun.misc.Signal(name), signal -> stop.countDown());
        }

        System.out.println("READY mongodb://127.0.0.1:" + address.getPort() + "/");
        System.out.flush();
        stop.await();
        server.shutdownNow();
        System.exit(0);
    }
}
