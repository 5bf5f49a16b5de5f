package saguaro.tools;

import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.ServerVersion;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;

/**
 * MongoDB wire-protocol server with mongo-java-server's in-memory backend, for tests and benches:
 * listens on 127.0.0.1:PORT (argv[0]) until killed; nothing is persisted. Reports MongoDB 5.0
 * (wire version 13): the Node driver 6.x refuses servers older than 4.2, and the backend's default
 * is 3.6.
 *
 *   java -cp '.tools/mongo-java-server/classes:.tools/mongo-java-server/lib/*' saguaro.tools.Main PORT
 */
public final class Main {
	public static void main(String[] args) throws Exception {
		if (args.length != 1) {
			System.err.println("usage: saguaro.tools.Main PORT");
			System.exit(2);
		}
		int port = Integer.parseInt(args[0]);
		MongoServer server = new MongoServer(new MemoryBackend().version(ServerVersion.MONGO_5_0));
		server.bind("127.0.0.1", port);
		Runtime.getRuntime().addShutdownHook(new Thread(server::shutdownNow));
		System.out.println("mongo-java-server listening on " + server.getLocalAddress());
		Thread.currentThread().join();
	}
}
