// The command log, a test command of the dev database only (MongoDB has no
// such command): what the server received, so that a test can check what
// a client sent, beyond what it got back.
//
//   db.adminCommand({devdbCommandLog: 1})
//     -> {commands: [{seq, db, command, collection, appName, readPreference,
//                     writeConcern, lsid}, ...], seq: N, ok: 1}
//
// Every command but the handshake (isMaster, hello), configureFailPoint and
// devdbCommandLog itself, oldest first, at most the last LIMIT. Per command:
// seq (1, 2, ... in the order received), db, command (its name),
// collection (the command's value when it is a string), appName (the
// client.application.name of the connection's handshake), readPreference
// (the $readPreference document), writeConcern (the writeConcern
// document), lsid (true); each only when there is one. The reply's seq is
// that of the last command logged so far (0 before the first).
//
// Options: appName: X, only the commands of the clients named X; after: N,
// only those with a seq above N; clear: true, and the commands returned are
// removed from the log.
import de.bwaldvogel.mongo.bson.Document;

import io.netty.channel.Channel;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

final class CommandLog {
    static final String COMMAND = "devdbCommandLog";

    static final int LIMIT = 20000;

    // Guarded by this.
    private final ArrayDeque<Document> commands = new ArrayDeque<>();
    private long seq;

    /** Logs a command as it arrives, before it runs. */
    void add(Channel channel, String db, String command, Document query) {
        Document entry = new Document("db", db);
        entry.put("command", command);
        Object target = query.get(command);
        if (target instanceof String) {
            entry.put("collection", target);
        }
        String appName = FailCommand.appName(channel);
        if (appName != null) {
            entry.put("appName", appName);
        }
        Object readPreference = query.get("$readPreference");
        if (readPreference instanceof Document) {
            entry.put("readPreference", ((Document) readPreference).cloneDeeply());
        }
        Object writeConcern = query.get("writeConcern");
        if (writeConcern instanceof Document) {
            entry.put("writeConcern", ((Document) writeConcern).cloneDeeply());
        }
        if (query.containsKey("lsid")) {
            entry.put("lsid", true);
        }
        synchronized (this) {
            Document numbered = new Document("seq", ++seq);
            numbered.putAll(entry);
            commands.addLast(numbered);
            if (commands.size() > LIMIT) {
                commands.removeFirst();
            }
        }
    }

    /** The command devdbCommandLog. */
    Document command(String db, Document query) {
        if (!db.equals("admin")) {
            return FailCommand.errorReply(13, COMMAND + " may only be run against the admin database.", null);
        }
        String appName = null;
        long after = 0;
        boolean clear = false;
        for (String option : query.keySet()) {
            Object value = query.get(option);
            switch (option) {
                case COMMAND:
                case "lsid":
                    break;
                case "appName":
                    if (!(value instanceof String)) {
                        return FailCommand.errorReply(14, COMMAND + ": 'appName' must be a string", null);
                    }
                    appName = (String) value;
                    break;
                case "after":
                    if (!(value instanceof Integer || value instanceof Long)) {
                        return FailCommand.errorReply(14, COMMAND + ": 'after' must be an integer, a seq", null);
                    }
                    after = ((Number) value).longValue();
                    break;
                case "clear":
                    if (!(value instanceof Boolean)) {
                        return FailCommand.errorReply(14, COMMAND + ": 'clear' must be a boolean", null);
                    }
                    clear = (Boolean) value;
                    break;
                default:
                    if (!option.startsWith("$")) {
                        return FailCommand.errorReply(40415, "BSON field '" + COMMAND + "." + option
                            + "' is an unknown field (it takes appName, after and clear)", null);
                    }
            }
        }
        List<Document> found = new ArrayList<>();
        long last;
        synchronized (this) {
            for (Iterator<Document> i = commands.iterator(); i.hasNext();) {
                Document entry = i.next();
                if ((long) entry.get("seq") <= after || (appName != null && !appName.equals(entry.get("appName")))) {
                    continue;
                }
                found.add(entry);
                if (clear) {
                    i.remove();
                }
            }
            last = seq;
        }
        Document reply = new Document("commands", found);
        reply.put("seq", last);
        reply.put("ok", 1.0);
        return reply;
    }
}
