/**
 * The stream tables that replace Node's Map and Set in HTTP/2 sessions:
 * they behave as Node's code needs, real sessions serve, close and are
 * destroyed on them, and the platform host gives them to its connections.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type Http2Session, type ServerHttp2Session, type ServerHttp2Stream } from "node:http2";
import { type AddressInfo, connect as netConnect, createServer as createNetServer, type Socket } from "node:net";
import { credentials, Metadata, type Client, makeGenericClientConstructor, Server, ServerCredentials, status, type ServiceError, type sendUnaryData, type ServerUnaryCall } from "@grpc/grpc-js";
import { describe, test, vi } from "vitest";
import type { TestScope } from "@meshwork/testing";
import { adoptGrpcClientTables, adoptStreamTables, ArraySet, grpcClientTransportsAdopted, hasStreamTables, StreamTable } from "./http2-stream-tables.js";
import { createSilentLogger } from "./logger.js";
import { createGrpcHost } from "./server.js";

describe("StreamTable, as Node's session code uses its Map", () => {
  test("get, has, set, delete and size follow the ids, and a second set of an id replaces without counting twice", () => {
    const table = new StreamTable<string>();
    assert.equal(table.set(1, "a").set(3, "b").set(1, "a2"), table);
    assert.equal(table.size, 2);
    assert.equal(table.get(1), "a2");
    assert.equal(table.has(3), true);
    assert.equal(table.get(5), undefined);
    assert.equal(table.delete(3), true);
    assert.equal(table.delete(3), false);
    assert.equal(table.size, 1);
    assert.equal(table.has(3), false);
  });

  test("forEach visits every stream with its id, and skips one a visit deletes (destroy deletes each)", () => {
    const table = new StreamTable<string>();
    for (const id of [7, 1, 5, 3]) table.set(id, `s${id}`);
    const visited: string[] = [];
    table.forEach((stream, id, self) => {
      visited.push(`${id}:${stream}`);
      if (id === 1) self.delete(3);
      self.delete(id);
    });
    assert.deepEqual(visited, ["1:s1", "5:s5", "7:s7"]);
    assert.equal(table.size, 0);
  });
});

describe("ArraySet, as Node's session code uses its Set", () => {
  test("add, has, delete and size, each stream once", () => {
    const a = { name: "a" };
    const b = { name: "b" };
    const c = { name: "c" };
    const set = new ArraySet<{ name: string }>();
    set.add(a).add(b).add(a).add(c);
    assert.equal(set.size, 3);
    assert.equal(set.delete(a), true);
    assert.equal(set.delete(a), false);
    assert.equal(set.has(a), false);
    assert.equal(set.has(b) && set.has(c), true);
    assert.equal(set.size, 2);
  });

  test("forEach visits each stream once even when the visit deletes it (close and destroy do)", () => {
    const streams = [{ n: 1 }, { n: 2 }, { n: 3 }];
    const set = new ArraySet<{ n: number }>();
    for (const stream of streams) set.add(stream);
    const seen: number[] = [];
    set.forEach((stream, again, self) => {
      assert.equal(stream, again);
      seen.push(stream.n);
      self.delete(stream);
    });
    assert.deepEqual(seen.sort(), [1, 2, 3]);
    assert.equal(set.size, 0);
  });

  test("for...of visits each member once even when the body deletes it (grpc-js ends each call in flight when its connection drops)", () => {
    const calls = [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }];
    const set = new ArraySet<{ n: number }>();
    for (const call of calls) set.add(call);
    const seen: number[] = [];
    for (const call of set) {
      seen.push(call.n);
      set.delete(call);
    }
    assert.deepEqual(seen.sort(), [1, 2, 3, 4]);
    assert.equal(set.size, 0);
  });
});

/** A plain HTTP/2 server whose sessions get the tables; /hold answers only when told. */
async function startServer(t: TestScope): Promise<{ port: number; sessions: ServerHttp2Session[]; held: ServerHttp2Stream[]; heldArrived: () => Promise<void>; allClosed: () => Promise<void> }> {
  const sessions: ServerHttp2Session[] = [];
  const closing: Promise<unknown>[] = [];
  const held: ServerHttp2Stream[] = [];
  let onHeld: (() => void) | undefined;
  const server = http2.createServer();
  server.on("session", (session: ServerHttp2Session) => {
    assert.equal(adoptStreamTables(session), true, "a new server session takes the tables");
    sessions.push(session);
  });
  server.on("stream", (stream: ServerHttp2Stream, headers) => {
    stream.on("error", () => undefined);
    closing.push(once(stream, "close"));
    if (headers[":path"] === "/hold") {
      held.push(stream);
      onHeld?.();
      return;
    }
    stream.respond({ ":status": 200 });
    stream.end(`answer to ${headers[":path"]}`);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.onTestFinished(async () => {
    for (const session of sessions) session.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const heldArrived = (): Promise<void> =>
    new Promise((resolve) => {
      onHeld = resolve;
    });
  const allClosed = async (): Promise<void> => void (await Promise.all(closing));
  return { port: (server.address() as AddressInfo).port, sessions, held, heldArrived, allClosed };
}

function connect(t: TestScope, port: number, adopt = true): ClientHttp2Session {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  if (adopt) assert.equal(adoptStreamTables(session), true, "a new client session takes the tables");
  session.on("error", () => undefined);
  t.onTestFinished(() => void session.destroy());
  return session;
}

function get(session: ClientHttp2Session, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":path": path });
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    // On close, not end: the stream has left the session's table by then.
    stream.on("close", () => resolve(Buffer.concat(chunks).toString()));
    stream.on("error", reject);
    stream.end();
  });
}

/** The two collections inside a session's state, as Node's code sees them. */
function tablesOf(session: Http2Session): { streams: { size: number }; pendingStreams: { size: number } } {
  const key = Object.getOwnPropertySymbols(session).find((symbol) => symbol.description === "state");
  assert.ok(key, "the session has Node's state");
  const state = (session as unknown as Record<symbol, { streams: { size: number }; pendingStreams: { size: number } } | undefined>)[key];
  assert.ok(state);
  return state;
}

describe("HTTP/2 sessions on the tables", () => {
  test("a client and a server session serve 200 requests, 16 at a time, and end with empty tables", async (t) => {
    const server = await startServer(t);
    const client = connect(t, server.port);
    const answers: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < 200) {
          const n = next++;
          answers[n] = await get(client, `/r${n}`);
        }
      }),
    );
    assert.deepEqual(
      answers,
      Array.from({ length: 200 }, (_, n) => `answer to /r${n}`),
    );
    await server.allClosed();
    const [serverSession] = server.sessions;
    assert.ok(serverSession && hasStreamTables(serverSession) && hasStreamTables(client));
    for (const session of [client, serverSession]) {
      const tables = tablesOf(session);
      assert.ok(tables.streams instanceof StreamTable && tables.pendingStreams instanceof ArraySet, "Node's code works on these tables");
      assert.equal(tables.streams.size, 0, "every closed stream left the table");
      assert.equal(tables.pendingStreams.size, 0);
    }
  });

  test("destroying a session with streams open ends each of them (Node walks the tables with forEach)", async (t) => {
    const server = await startServer(t);
    const client = connect(t, server.port);
    const open: ClientHttp2Stream[] = [];
    for (let n = 0; n < 3; n++) {
      const arrived = server.heldArrived();
      const stream = client.request({ ":path": "/hold" });
      stream.on("error", () => undefined);
      stream.end();
      open.push(stream);
      await arrived;
    }
    const [serverSession] = server.sessions;
    assert.equal(tablesOf(serverSession!).streams.size, 3);
    const closed = open.map((stream) => once(stream, "close"));
    serverSession!.destroy();
    await Promise.all([...closed, ...server.held.map((stream) => (stream.closed ? Promise.resolve() : once(stream, "close")))]);
    assert.ok(server.held.every((stream) => stream.destroyed));
    assert.equal(tablesOf(serverSession!).streams.size, 0);
  });

  test("a session closed (GOAWAY) with a stream open closes once that stream is answered", async (t) => {
    const server = await startServer(t);
    const client = connect(t, server.port);
    const arrived = server.heldArrived();
    const stream = client.request({ ":path": "/hold" });
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.end();
    await arrived;
    const [serverSession] = server.sessions;
    const sessionClosed = once(serverSession!, "close");
    serverSession!.close();
    assert.equal(serverSession!.closed, true);
    assert.equal(serverSession!.destroyed, false, "the open stream keeps the session");
    const [held] = server.held;
    held!.respond({ ":status": 200 });
    held!.end("late answer");
    await once(stream, "end");
    await sessionClosed;
    assert.equal(Buffer.concat(chunks).toString(), "late answer");
  });

  test("a session that already has a stream keeps Node's tables", async (t) => {
    const server = await startServer(t);
    const client = connect(t, server.port, false);
    const stream = client.request({ ":path": "/first" });
    stream.on("error", () => undefined);
    stream.end();
    assert.equal(adoptStreamTables(client), false);
    assert.equal(hasStreamTables(client), false);
    assert.equal(Object.prototype.toString.call(tablesOf(client).pendingStreams), "[object Set]");
    stream.resume();
    await once(stream, "end");
  });
});

test("the platform host gives every connection it accepts the tables", async (t) => {
  const host = createGrpcHost({ name: "tables", log: createSilentLogger() });
  const port = await host.listen({ host: "127.0.0.1", port: 0 });
  host.setServing(true);
  t.onTestFinished(async () => {
    await host.shutdown(0);
  });
  // grpc.health.v1 Check, raw: any call opens a connection.
  const HealthClient = makeGenericClientConstructor(
    {
      Check: {
        path: "/grpc.health.v1.Health/Check",
        requestStream: false,
        responseStream: false,
        requestSerialize: (bytes: Buffer) => bytes,
        requestDeserialize: (bytes: Buffer) => bytes,
        responseSerialize: (bytes: Buffer) => bytes,
        responseDeserialize: (bytes: Buffer) => bytes,
      },
    },
    "Health",
  );
  // A subchannel pool each, or grpc-js would share one connection between them.
  const clients: Client[] = [1, 2].map(() => new HealthClient(`127.0.0.1:${port}`, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }));
  t.onTestFinished(() => {
    for (const client of clients) client.close();
  });
  for (const client of clients) {
    const answer = await new Promise<Buffer>((resolve, reject) => {
      client.makeUnaryRequest(
        "/grpc.health.v1.Health/Check",
        (bytes: Buffer) => bytes,
        (bytes: Buffer) => bytes,
        Buffer.alloc(0),
        new Metadata(),
        (error, response) => (error ? reject(error) : resolve(response!)),
      );
    });
    // SERVING is enum value 1 in field 1.
    assert.deepEqual([...answer], [0x08, 0x01]);
  }
  // grpc-js keeps its sessions in a private map: read here only to check them.
  const sessions = (host.server as unknown as { sessions: Map<ServerHttp2Session, unknown> }).sessions;
  assert.equal(sessions.size, 2, "one session per client");
  for (const session of sessions.keys()) assert.equal(hasStreamTables(session), true);
});

describe("grpc-js clients on the tables", () => {
  const RAW = { requestSerialize: (bytes: Buffer) => bytes, requestDeserialize: (bytes: Buffer) => bytes, responseSerialize: (bytes: Buffer) => bytes, responseDeserialize: (bytes: Buffer) => bytes };
  const definition = { Echo: { path: "/tables.Echo/Echo", requestStream: false, responseStream: false, ...RAW } };
  const EchoClient = makeGenericClientConstructor(definition, "Echo");

  /** A grpc-js server that echoes, except "hold", which it never answers. */
  async function startEcho(t: TestScope): Promise<{ port: number; held: () => number }> {
    const server = new Server();
    let held = 0;
    server.addService(definition, {
      Echo: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
        if (call.request.toString() === "hold") held++;
        else callback(null, call.request);
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
    t.onTestFinished(() => server.forceShutdown());
    return { port, held: () => held };
  }

  const echo = (client: Client, text: string): Promise<string> =>
    new Promise((resolve, reject) => {
      client.makeUnaryRequest(definition.Echo.path, RAW.requestSerialize, RAW.responseDeserialize, Buffer.from(text), new Metadata(), { deadline: Date.now() + 20_000 }, (error, answer) =>
        error ? reject(error) : resolve(answer!.toString()),
      );
    });

  test("a new connection takes the tables; 64 calls, 16 at a time, are answered; calls in flight when the connection drops fail UNAVAILABLE at once", async (t) => {
    assert.equal(adoptGrpcClientTables(), true, "grpc-js's connector is the one read");
    assert.equal(adoptGrpcClientTables(), true, "a second call only reports");
    const { port, held } = await startEcho(t);
    // Between client and server, a TCP relay that can cut the connection without a word of HTTP/2.
    const sockets: Socket[] = [];
    const relay = createNetServer((inbound) => {
      const outbound = netConnect(port, "127.0.0.1");
      sockets.push(inbound, outbound);
      for (const socket of [inbound, outbound]) socket.on("error", () => undefined);
      inbound.pipe(outbound).pipe(inbound);
    });
    relay.listen(0, "127.0.0.1");
    await once(relay, "listening");
    t.onTestFinished(() => void relay.close());
    const before = grpcClientTransportsAdopted();
    // A subchannel pool of its own: a new connection, not one another test's client opened.
    const client = new EchoClient(`127.0.0.1:${(relay.address() as AddressInfo).port}`, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
    t.onTestFinished(() => client.close());
    let next = 0;
    const answers: string[] = [];
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < 64) {
          const n = next++;
          answers[n] = await echo(client, `call ${n}`);
        }
      }),
    );
    assert.deepEqual(
      answers,
      Array.from({ length: 64 }, (_, n) => `call ${n}`),
    );
    assert.equal(grpcClientTransportsAdopted(), before + 1, "its one connection got the tables");

    // grpc-js walks its calls in flight (now an ArraySet) to fail each one when the connection drops.
    const inFlight = [echo(client, "hold"), echo(client, "hold"), echo(client, "hold")].map((call) =>
      call.then(
        () => assert.fail("a held call was answered"),
        (error: ServiceError) => `${status[error.code]}: ${error.details}`,
      ),
    );
    await vi.waitFor(() => assert.equal(held(), 3));
    for (const socket of sockets) socket.destroy();
    assert.deepEqual(await Promise.all(inFlight), Array(3).fill("UNAVAILABLE: Connection dropped"));
  });
});
