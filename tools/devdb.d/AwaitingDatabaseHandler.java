package de.bwaldvogel.mongo.wire;

import java.util.concurrent.Executor;
import java.util.function.Predicate;

import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.wire.message.ClientRequest;
import de.bwaldvogel.mongo.wire.message.MongoMessage;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.group.ChannelGroup;

/**
 * The server's database handler, but a command that may wait (a change
 * stream's getMore, which a real server holds open up to its
 * maxAwaitTimeMS) runs on a thread of its own instead of the connection's
 * event loop, which other connections share. In this package for
 * handleMessage, which the handler keeps to it.
 */
public final class AwaitingDatabaseHandler extends MongoDatabaseHandler {
    private final Predicate<Document> mayWait;
    private final Executor waiters;

    public AwaitingDatabaseHandler(MongoBackend backend, ChannelGroup channels,
                                   Predicate<Document> mayWait, Executor waiters) {
        super(backend, channels);
        this.mayWait = mayWait;
        this.waiters = waiters;
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, ClientRequest request) {
        if (request instanceof MongoMessage && mayWait.test(((MongoMessage) request).getDocument())) {
            // A client sends its next command on a connection only after
            // this one's reply: nothing on it can overtake this reply.
            MongoMessage message = (MongoMessage) request;
            waiters.execute(() -> ctx.channel().writeAndFlush(handleMessage(message)));
            return;
        }
        super.channelRead0(ctx, request);
    }
}
