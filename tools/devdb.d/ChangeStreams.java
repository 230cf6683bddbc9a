import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

import de.bwaldvogel.mongo.bson.Document;

/**
 * A change stream's getMore as a real server answers it: when no event is
 * there yet, the server holds the getMore open until one comes or its
 * maxAwaitTimeMS passes (1 s when the client gives none), and answers an
 * empty batch only then. The backend answers at once, so a client's loop
 * over mongoc_change_stream_next would spin, thousands of getMores a second
 * each reading the whole oplog, and cost what a real server never does.
 * Here the getMore is run again after each write command until its batch
 * has an event or the time is up. It runs on a thread of its own
 * (DevServer), not on an event loop other connections share.
 */
final class ChangeStreams {
    /** A real server's wait for an awaitData cursor that names none. */
    static final long DEFAULT_AWAIT_MS = 1000;

    private final Set<Long> cursors = ConcurrentHashMap.newKeySet();
    private final Object lock = new Object();
    private long writes; // under lock

    /** An aggregate whose first stage is $changeStream. */
    static boolean opensStream(String command, Document query) {
        if (!command.equals("aggregate") || !(query.get("pipeline") instanceof List)) {
            return false;
        }
        List<?> pipeline = (List<?>) query.get("pipeline");
        return !pipeline.isEmpty() && pipeline.get(0) instanceof Document
            && ((Document) pipeline.get(0)).containsKey("$changeStream");
    }

    /** A command after which a stream may have an event to read. */
    static boolean isWrite(String command) {
        switch (command) {
            case "insert":
            case "update":
            case "delete":
            case "findAndModify":
            case "findandmodify":
                return true;
            default:
                return false;
        }
    }

    /** A getMore on a change stream's cursor (the OP_MSG body as sent). */
    boolean isStreamGetMore(Document query) {
        if (query.isEmpty() || !query.keySet().iterator().next().equals("getMore")) {
            return false;
        }
        Object id = query.get("getMore");
        return id instanceof Number && cursors.contains(((Number) id).longValue());
    }

    /** Runs the stream's aggregate and remembers its cursor. */
    Document open(Supplier<Document> run) {
        Document reply = run.get();
        long id = cursorId(reply);
        if (id != 0) {
            cursors.add(id);
        }
        return reply;
    }

    /** Runs a stream's getMore, again after each write, until it has events or its time is up. */
    Document getMore(Document query, Supplier<Document> run) {
        Object await = query.get("maxTimeMS");
        long waitMs = await instanceof Number ? ((Number) await).longValue() : DEFAULT_AWAIT_MS;
        long deadline = System.nanoTime() + waitMs * 1_000_000L;
        while (true) {
            long seen;
            synchronized (lock) {
                seen = writes;
            }
            Document reply = run.get();
            long id = cursorId(reply);
            if (id == 0) {
                cursors.remove(((Number) query.get("getMore")).longValue());
            }
            if (id == 0 || !isEmptyBatch(reply)) {
                return reply;
            }
            synchronized (lock) {
                long left;
                while (writes == seen && (left = deadline - System.nanoTime()) > 0) {
                    try {
                        lock.wait(Math.max(1, left / 1_000_000L));
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        return reply;
                    }
                }
                if (writes == seen) {
                    return reply;
                }
            }
        }
    }

    /** Called after each write command: waiting getMores look again. */
    void wrote() {
        synchronized (lock) {
            writes++;
            lock.notifyAll();
        }
    }

    /** Forgets the cursors of a killCursors. */
    void killed(Document query) {
        if (query.get("cursors") instanceof List) {
            for (Object id : (List<?>) query.get("cursors")) {
                if (id instanceof Number) {
                    cursors.remove(((Number) id).longValue());
                }
            }
        }
    }

    private static long cursorId(Document reply) {
        Object cursor = reply == null ? null : reply.get("cursor");
        if (cursor instanceof Document && ((Document) cursor).get("id") instanceof Number) {
            return ((Number) ((Document) cursor).get("id")).longValue();
        }
        return 0;
    }

    private static boolean isEmptyBatch(Document reply) {
        Object cursor = reply.get("cursor");
        if (!(cursor instanceof Document)) {
            return false;
        }
        Object batch = ((Document) cursor).get("nextBatch");
        return batch instanceof List && ((List<?>) batch).isEmpty();
    }
}
