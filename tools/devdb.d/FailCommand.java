// MongoDB's fault injection for the dev database: the configureFailPoint
// command with the one failpoint drivers test with, failCommand, as the real
// server has them (src/mongo/db/commands/fail_point_cmd.cpp,
// src/mongo/util/fail_point.cpp, and the failCommand code of
// src/mongo/db/commands.cpp and service_entry_point_common.cpp):
//
//   db.adminCommand({configureFailPoint: "failCommand",
//                    mode: "alwaysOn" | "off" | {times: N} | {skip: N}
//                          | {activationProbability: P},
//                    data: {failCommands: [...], errorCode, errorLabels,
//                           closeConnection, blockConnection, blockTimeMS,
//                           writeConcernError, appName, namespace,
//                           failAllCommands}})
//
// DevDb routes every command through handle(). Where this differs from the
// server, the comment says so; docs/devdb.md describes it for users.
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;
import de.bwaldvogel.mongo.exception.MongoServerException;
import de.bwaldvogel.mongo.wire.message.MongoMessage;
import de.bwaldvogel.mongo.wire.message.MongoReply;

import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import io.netty.util.AttributeKey;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.function.Supplier;

final class FailCommand {
    private static final Logger log = LoggerFactory.getLogger(FailCommand.class);

    static final String MESSAGE = "Failing command via 'failCommand' failpoint";

    // Never failed, whatever failCommands says. The server exempts only
    // configureFailPoint; the handshake and the commands a driver sends on
    // its own are exempt here too, so that a failpoint can never cut every
    // client of the shared test server off from it.
    private static final Set<String> EXEMPT = Set.of(
        "configureFailPoint", "hello", "isMaster", "ismaster", "ping", "buildInfo", "buildinfo",
        "endSessions");

    // A name in failCommands matches a command sent under any of its names
    // (Command::hasAlias), and only exactly: "Find" is not "find".
    private static final Map<String, String> ALIASES = Map.of(
        "findandmodify", "findAndModify",
        "dbstats", "dbStats",
        "collstats", "collStats",
        "deleteIndexes", "dropIndexes",
        "getlasterror", "getLastError");

    // The commands that take a write concern, and so may get a
    // writeConcernError (Command::supportsWriteConcern); aggregate only with
    // $out or $merge.
    private static final Set<String> WRITE_CONCERN = Set.of(
        "insert", "update", "delete", "findAndModify", "createIndexes", "dropIndexes", "create",
        "drop", "dropDatabase", "renameCollection", "collMod", "commitTransaction",
        "abortTransaction");

    private static final AttributeKey<String> APP_NAME = AttributeKey.valueOf("devdb.appName");

    private enum Mode { OFF, ALWAYS_ON, TIMES, SKIP, RANDOM }

    // The failpoint, as FailPoint::Impl keeps it; guarded by this.
    private Mode mode = Mode.OFF;
    private int modeValue;
    private Document data = new Document();
    private long timesEntered;

    // Runs the commands that blockConnection delays, off the network threads.
    private final ExecutorService blocked = Executors.newCachedThreadPool(task -> {
        Thread thread = new Thread(task, "devdb-failcommand");
        thread.setDaemon(true);
        return thread;
    });
    private final Deferrer deferrer = new Deferrer();

    /** Runs one command: `run` is the backend's own handling of it. */
    Document handle(Channel channel, String db, String command, Document query, Supplier<Document> run) {
        if (ReplicaSet.isHandshake(command)) {
            rememberAppName(channel, query);
        }
        if (command.equals("configureFailPoint")) {
            return configure(db, query);
        }
        if (EXEMPT.contains(command)) {
            return run.get();
        }
        // evaluateFailCommandFailPoint: it fires (and counts) only for a
        // command that matches and an action to take before running it.
        Document fired = enter(channel, db, command, query,
            d -> isTrue(d, "closeConnection") || isTrue(d, "blockConnection") || integer(d, "errorCode") != null);
        if (fired == null) {
            return runAndAddWriteConcernError(channel, db, command, query, run, null);
        }
        List<Object> labels = errorLabels(fired);
        if (isTrue(fired, "blockConnection")) {
            Long blockTimeMS = integer(fired, "blockTimeMS");
            if (blockTimeMS == null) {
                return errorReply(72, "must specify 'blockTimeMS' when 'blockConnection' is true", labels);
            }
            if (blockTimeMS < 0) {
                return errorReply(72, "'blockTimeMS' must be non-negative", labels);
            }
            if (blockTimeMS > 0) {
                return deferrer.later(channel, blockTimeMS, blocked,
                    () -> afterBlock(channel, db, command, query, run, fired, labels));
            }
        }
        return afterBlock(channel, db, command, query, run, fired, labels);
    }

    private Document afterBlock(Channel channel, String db, String command, Document query,
                                Supplier<Document> run, Document fired, List<Object> labels) {
        if (isTrue(fired, "closeConnection")) {
            // The server ends the session and throws 50985, a reply no one
            // receives: writing it to the closed channel fails quietly.
            channel.close();
            return errorReply(50985, MESSAGE, labels);
        }
        Long errorCode = integer(fired, "errorCode");
        if (errorCode != null) {
            return errorReply(errorCode, MESSAGE, labels);
        }
        return runAndAddWriteConcernError(channel, db, command, query, run, labels);
    }

    /**
     * Runs the command; then, as the server does when it would wait for the
     * write concern, the failpoint may add data.writeConcernError to the
     * reply, failed or not (this is a second evaluation: it counts for
     * times and skip on its own). `labels`: the errorLabels of a failpoint
     * that fired before the command ran, for the reply if the command fails.
     */
    private Document runAndAddWriteConcernError(Channel channel, String db, String command, Document query,
                                                Supplier<Document> run, List<Object> labels) {
        Document reply;
        MongoServerException failed = null;
        try {
            reply = run.get();
        } catch (MongoServerException e) {
            failed = e;
            reply = null;
        }
        Document fired = takesWriteConcern(command, query)
            ? enter(channel, db, command, query, d -> d.containsKey("writeConcernError"))
            : null;
        if (fired == null && (labels == null || failed == null)) {
            if (failed != null) {
                throw failed;  // the backend's own error, untouched
            }
            return reply;
        }
        reply = failed != null ? errorReply(failed) : new Document(reply);
        if (fired != null) {
            reply.put("writeConcernError", fired.get("writeConcernError"));
            List<Object> wceLabels = errorLabels(fired);
            if (wceLabels != null) {
                labels = wceLabels;
            }
        }
        if (labels != null && !labels.isEmpty()) {
            reply.put("errorLabels", labels);
        }
        return reply;
    }

    /**
     * FailPoint::executeIf: null, or the failpoint's data when it is on,
     * the command matches, `action` holds for the data, and the mode lets
     * it fire this time. Firing counts in timesEntered.
     */
    private synchronized Document enter(Channel channel, String db, String command, Document query,
                                        Predicate<Document> action) {
        if (mode == Mode.OFF || !matches(channel, db, command, query) || !action.test(data)) {
            return null;
        }
        boolean fire;
        switch (mode) {
            case ALWAYS_ON:
                fire = true;
                break;
            case RANDOM:
                fire = ThreadLocalRandom.current().nextInt(Integer.MAX_VALUE) < modeValue;
                break;
            case TIMES:
                // As the server: {times: 0} fires once, like {times: 1}.
                if (--modeValue <= 0) {
                    mode = Mode.OFF;
                }
                fire = true;
                break;
            case SKIP:
                fire = modeValue <= 0 || --modeValue < 0;
                break;
            default:
                fire = false;
        }
        if (fire) {
            timesEntered++;
        }
        return fire ? data : null;
    }

    /** CommandHelpers::shouldActivateFailCommandFailPoint, for a client. */
    private boolean matches(Channel channel, String db, String command, Document query) {
        if (data.containsKey("appName")) {
            String appName = channel.attr(APP_NAME).get();
            if (!string(data, "appName").equals(appName != null ? appName : "")) {
                return false;
            }
        }
        if (data.containsKey("namespace") && !string(data, "namespace").equals(namespace(db, command, query))) {
            return false;
        }
        if (data.containsKey("failAllCommands")) {
            return true;
        }
        Object names = data.get("failCommands");
        Collection<?> list = names instanceof Collection ? (Collection<?>) names
            : names instanceof Document ? ((Document) names).values() : List.of();
        String canonical = ALIASES.getOrDefault(command, command);
        for (Object name : list) {
            if (name instanceof String && ALIASES.getOrDefault((String) name, (String) name).equals(canonical)) {
                return true;
            }
        }
        return false;
    }

    /** The command's namespace, "db.collection" (db.$cmd without one). */
    private static String namespace(String db, String command, Document query) {
        Object target = command.equals("getMore") ? query.get("collection") : query.get(command);
        return db + "." + (target instanceof String ? (String) target : "$cmd");
    }

    private static boolean takesWriteConcern(String command, Document query) {
        if (WRITE_CONCERN.contains(ALIASES.getOrDefault(command, command))) {
            return true;
        }
        if (command.equals("aggregate") && query.get("pipeline") instanceof List) {
            for (Object stage : (List<?>) query.get("pipeline")) {
                if (stage instanceof Document
                    && (((Document) stage).containsKey("$out") || ((Document) stage).containsKey("$merge"))) {
                    return true;
                }
            }
        }
        return false;
    }

    /** The application a connection's handshake named, or null. */
    static String appName(Channel channel) {
        return channel.attr(APP_NAME).get();
    }

    /** The first handshake of a connection names its application, if any. */
    private static void rememberAppName(Channel channel, Document query) {
        Object client = query.get("client");
        Object application = client instanceof Document ? ((Document) client).get("application") : null;
        Object name = application instanceof Document ? ((Document) application).get("name") : null;
        if (name instanceof String) {
            channel.attr(APP_NAME).setIfAbsent((String) name);
        }
    }

    // ---- configureFailPoint ------------------------------------------------

    private Document configure(String db, Document query) {
        if (!db.equals("admin")) {
            return errorReply(13, "configureFailPoint may only be run against the admin database.", null);
        }
        Object name = query.get("configureFailPoint");
        String failPoint = name instanceof String ? (String) name : "";
        if (!failPoint.equals("failCommand")) {
            // Real failpoints other than failCommand are not here either.
            return errorReply(266, failPoint + " not found", null);
        }
        // FailPoint::parseBSON
        Object modeField = query.get("mode");
        Mode newMode;
        int value = 0;
        if (modeField == null) {
            return errorReply(20, "When setting a failpoint, you must supply a 'mode'", null);
        } else if (modeField instanceof String) {
            if (modeField.equals("off")) {
                newMode = Mode.OFF;
            } else if (modeField.equals("alwaysOn")) {
                newMode = Mode.ALWAYS_ON;
            } else {
                return errorReply(2, "unknown mode: " + modeField, null);
            }
        } else if (modeField instanceof Document) {
            Document modeDoc = (Document) modeField;
            String option = modeDoc.containsKey("times") ? "times"
                : modeDoc.containsKey("skip") ? "skip"
                : modeDoc.containsKey("activationProbability") ? "activationProbability" : null;
            if (option == null) {
                return errorReply(2, "'mode' must be one of 'off', 'alwaysOn', '{times:n}', '{skip:n}' or "
                    + "'{activationProbability:p}'", null);
            }
            Object raw = modeDoc.get(option);
            if (!(raw instanceof Number)) {
                return errorReply(14, option.equals("activationProbability")
                    ? "the 'activationProbability' option to 'mode' must be a double between 0 and 1"
                    : "Expected field \"" + option + "\" to have numeric type, but found " + typeName(raw), null);
            }
            if (option.equals("activationProbability")) {
                double p = ((Number) raw).doubleValue();
                if (!(p >= 0 && p <= 1)) {
                    return errorReply(2, "activationProbability must be between 0.0 and 1.0; found " + p, null);
                }
                newMode = Mode.RANDOM;
                value = (int) (Integer.MAX_VALUE * p);
            } else {
                Long n = integer(modeDoc, option);
                if (n == null) {
                    return errorReply(2, "Expected field \"" + option + "\" to have a value exactly representable "
                        + "as a 64-bit integer, but found " + option + ": " + raw, null);
                }
                if (n < 0) {
                    return errorReply(2, "'" + option + "' option to 'mode' must be positive", null);
                }
                if (n > Integer.MAX_VALUE) {
                    return errorReply(2, "'" + option + "' option to 'mode' is too large", null);
                }
                newMode = option.equals("times") ? Mode.TIMES : Mode.SKIP;
                value = n.intValue();
            }
        } else {
            return errorReply(14, "'mode' must be a string or JSON object", null);
        }
        Object dataField = query.get("data");
        if (dataField != null && !(dataField instanceof Document)) {
            return errorReply(14, "the 'data' option must be a JSON object", null);
        }
        long count;
        synchronized (this) {
            mode = newMode;
            modeValue = value;
            data = dataField != null ? ((Document) dataField).cloneDeeply() : new Document();
            count = timesEntered;
        }
        log.info("set failpoint failCommand to mode {}, data {}", modeField, dataField);
        Document reply = new Document("count", count <= Integer.MAX_VALUE ? (Object) (int) count : (Object) count);
        reply.put("ok", 1.0);
        return reply;
    }

    // ---- values and replies -----------------------------------------------

    private static boolean isTrue(Document d, String key) {
        return Boolean.TRUE.equals(d.get(key));  // bsonExtractBooleanField: a bool, true
    }

    /** bsonExtractIntegerField: a number with an integral value, or null. */
    private static Long integer(Document d, String key) {
        Object value = d.get(key);
        if (value instanceof Integer || value instanceof Long) {
            return ((Number) value).longValue();
        }
        if (value instanceof Double) {
            double x = (Double) value;
            if (x == Math.rint(x) && Math.abs(x) < 0x1p63) {
                return (long) x;
            }
        }
        return null;
    }

    /** BSONObj::getStringField: the string, or "" for anything else. */
    private static String string(Document d, String key) {
        Object value = d.get(key);
        return value instanceof String ? (String) value : "";
    }

    private static String typeName(Object value) {
        return value instanceof String ? "string" : value instanceof Boolean ? "bool"
            : value instanceof Document ? "object" : value instanceof List ? "array"
            : value == null ? "null" : value.getClass().getSimpleName();
    }

    /** data.errorLabels when it is an array: the labels of the error reply. */
    @SuppressWarnings("unchecked")
    private static List<Object> errorLabels(Document d) {
        Object labels = d.get("errorLabels");
        return labels instanceof List ? new ArrayList<>((List<Object>) labels) : null;
    }

    static Document errorReply(long code, String message, List<Object> labels) {
        Document reply = new Document("ok", 0.0);
        reply.put("errmsg", message);
        reply.put("code", (int) code);
        reply.put("codeName", ErrorCodes.name((int) code));
        if (labels != null && !labels.isEmpty()) {
            reply.put("errorLabels", labels);
        }
        return reply;
    }

    /** The reply mongo-java-server makes of its own exception. */
    private static Document errorReply(MongoServerException e) {
        Document reply = new Document("$err", e.getMessageWithoutErrorCode());
        reply.put("errmsg", e.getMessageWithoutErrorCode());
        if (e instanceof MongoServerError) {
            reply.put("code", ((MongoServerError) e).getCode());
            reply.putIfNotNull("codeName", ((MongoServerError) e).getCodeName());
        }
        reply.put("ok", 0);
        return reply;
    }

    // ---- blockConnection without blocking the server -------------------------

    /**
     * mongo-java-server answers a command on the connection's network
     * thread, which serves other connections too: sleeping there would
     * block them as well, where the server blocks only the one operation.
     * So a blocked command answers with a placeholder that the Deferrer,
     * first in the connection's outbound pipeline, holds back; the command
     * runs on another thread once the time is up, and its reply is sent
     * under the placeholder's header. The connection reads nothing more
     * meanwhile, so replies keep their order.
     */
    @ChannelHandler.Sharable
    private static final class Deferrer extends ChannelOutboundHandlerAdapter {
        private static final String NAME = "devdb-failcommand";
        private static final String KEY = "$devdbDeferredReply";

        Document later(Channel channel, long delayMS, ExecutorService executor, Supplier<Document> rest) {
            if (channel.pipeline().get(NAME) == null) {
                channel.pipeline().addLast(NAME, this);
            }
            channel.config().setAutoRead(false);
            CompletableFuture<Document> reply = new CompletableFuture<>();
            CompletableFuture.delayedExecutor(delayMS, TimeUnit.MILLISECONDS, executor).execute(() -> {
                try {
                    reply.complete(rest.get());
                } catch (MongoServerException e) {
                    reply.complete(errorReply(e));
                } catch (RuntimeException e) {
                    reply.complete(errorReply(new MongoServerException("Unknown error: " + e.getMessage(), e)));
                }
            });
            return new Document(KEY, reply);
        }

        @Override
        public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) throws Exception {
            Document placeholder = msg instanceof MongoMessage ? ((MongoMessage) msg).getDocument()
                : msg instanceof MongoReply && ((MongoReply) msg).getDocuments().size() == 1
                    ? ((MongoReply) msg).getDocuments().get(0) : null;
            Object future = placeholder != null ? placeholder.get(KEY) : null;
            if (!(future instanceof CompletableFuture)) {
                ctx.write(msg, promise);
                return;
            }
            promise.trySuccess();
            Channel channel = ctx.channel();
            @SuppressWarnings("unchecked")
            CompletableFuture<Document> reply = (CompletableFuture<Document>) future;
            reply.thenAccept(doc -> {
                channel.writeAndFlush(msg instanceof MongoMessage
                    ? new MongoMessage(channel, ((MongoMessage) msg).getHeader(), doc)
                    : new MongoReply(((MongoReply) msg).getHeader(), List.of(doc), 0));
                channel.config().setAutoRead(true);
            });
        }
    }
}
