// The handshake: isMaster (any case) as mongo-java-server answers it, and
// hello, which it lacks, with the same fields and isWritablePrimary for
// ismaster. With --replset NAME the server shows itself as the primary of a
// one-member replica set NAME, as a replica set member's handshake
// (src/mongo/db/repl/replication_info.cpp) does:
//
//   setName NAME, setVersion 1, hosts ["127.0.0.1:PORT"],
//   primary and me "127.0.0.1:PORT", secondary false, electionId, lastWrite
//
// so that a driver given ?replicaSet=NAME connects and, for a read
// preference other than primary, sends $readPreference with each read. No
// logicalSessionTimeoutMinutes: the server has no sessions, and a driver
// that saw it would send lsid with every command.
import de.bwaldvogel.mongo.bson.BsonTimestamp;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.bson.ObjectId;

import io.netty.channel.Channel;

import java.net.InetSocketAddress;
import java.time.Instant;
import java.util.List;
import java.util.regex.Pattern;

final class ReplicaSet {
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9._-]+");

    // The term of the one election this primary ever won.
    private static final ObjectId ELECTION_ID = new ObjectId("7fffffff0000000000000001");

    private final String name;  // null: a standalone

    ReplicaSet(String name) {
        this.name = name;
    }

    static boolean isValidName(String name) {
        return NAME.matcher(name).matches();
    }

    static boolean isHandshake(String command) {
        return command.equalsIgnoreCase("isMaster") || command.equals("hello");
    }

    /** The reply to the handshake `command`, made from the backend's isMaster. */
    Document handshake(Channel channel, String command, Document query, DevDb.Backend backend) {
        Document own = backend.run("isMaster", query);
        boolean hello = command.equals("hello");
        Document reply = new Document();
        if (name != null) {
            String me = "127.0.0.1:" + ((InetSocketAddress) channel.localAddress()).getPort();
            Instant now = Instant.now();
            Document opTime = new Document("ts", new BsonTimestamp(now, 1)).append("t", 1L);
            reply.put("hosts", List.of(me));
            reply.put("setName", name);
            reply.put("setVersion", 1);
            reply.put(hello ? "isWritablePrimary" : "ismaster", true);
            reply.put("secondary", false);
            reply.put("primary", me);
            reply.put("me", me);
            reply.put("electionId", ELECTION_ID);
            reply.put("lastWrite", new Document("opTime", opTime)
                .append("lastWriteDate", now)
                .append("majorityOpTime", opTime)
                .append("majorityWriteDate", now));
        }
        for (String field : own.keySet()) {
            if (field.equals("ismaster")) {
                reply.putIfAbsent(hello ? "isWritablePrimary" : "ismaster", own.get(field));
            } else {
                reply.putIfAbsent(field, own.get(field));
            }
        }
        return reply;
    }
}
