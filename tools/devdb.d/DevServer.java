import java.net.InetSocketAddress;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Predicate;

import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.wire.AwaitingDatabaseHandler;
import de.bwaldvogel.mongo.wire.MongoExceptionHandler;
import de.bwaldvogel.mongo.wire.MongoWireMessageEncoder;
import de.bwaldvogel.mongo.wire.MongoWireProtocolHandler;
import de.bwaldvogel.mongo.wire.MongoWireReplyEncoder;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;

/**
 * What MongoServer does (the same pipeline, on Netty), with one difference:
 * commands that may wait, a change stream's getMore, are answered from a
 * thread pool of their own (AwaitingDatabaseHandler), so a stream held
 * open waiting for events never stalls the other connections of its event
 * loop.
 */
final class DevServer {
    private final MongoBackend backend;
    private final Predicate<Document> mayWait;
    private final EventLoopGroup boss = new NioEventLoopGroup(1);
    private final EventLoopGroup workers = new NioEventLoopGroup();
    private final ExecutorService waiters = Executors.newCachedThreadPool(r -> {
        Thread thread = new Thread(r, "devdb-await");
        thread.setDaemon(true);
        return thread;
    });
    private final ChannelGroup channels = new DefaultChannelGroup("devdb-channels", workers.next());
    private Channel listener;

    DevServer(MongoBackend backend, Predicate<Document> mayWait) {
        this.backend = backend;
        this.mayWait = mayWait;
    }

    /** Returns once the socket listens; throws (a BindException) when it cannot. */
    void bind(String host, int port) {
        listener = new ServerBootstrap()
            .group(boss, workers)
            .channel(NioServerSocketChannel.class)
            .option(ChannelOption.SO_BACKLOG, 100)
            .localAddress(new InetSocketAddress(host, port))
            .childOption(ChannelOption.TCP_NODELAY, true)
            .childHandler(new ChannelInitializer<SocketChannel>() {
                @Override
                protected void initChannel(SocketChannel ch) {
                    ch.pipeline().addLast(new MongoWireReplyEncoder());
                    ch.pipeline().addLast(new MongoWireMessageEncoder());
                    ch.pipeline().addLast(new MongoWireProtocolHandler());
                    ch.pipeline().addLast(new AwaitingDatabaseHandler(backend, channels, mayWait, waiters));
                    ch.pipeline().addLast(new MongoExceptionHandler());
                }
            })
            .bind().syncUninterruptibly().channel();
    }

    InetSocketAddress getLocalAddress() {
        return (InetSocketAddress) listener.localAddress();
    }

    /** Stops listening, closes the clients' connections, then the backend. */
    void shutdownNow() {
        if (listener != null) {
            listener.close().syncUninterruptibly();
        }
        channels.close().syncUninterruptibly();
        waiters.shutdownNow();
        backend.close();
        boss.shutdownGracefully();
        workers.shutdownGracefully();
    }
}
