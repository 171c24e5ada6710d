/**
 * The one-port HTTP/1.1 + h2c server on its own, with a plain handler: the
 * protocol sniffing, timeouts and draining that everything else stands on.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { once } from "node:events";
import http from "node:http";
import http2, { type Http2ServerRequest, type Http2Session } from "node:http2";
import net from "node:net";
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import { createSilentLogger, hasStreamTables } from "@meshwork/platform";
import { createEdgeServer, type EdgeHandler, type EdgeServer, type EdgeStreamHandler } from "../src/edge-server.js";

const TIMEOUT = { timeout: 20_000 };

/** Answers "<protocol> <method> <url> <sha256 of the body> <body length>"; /slow waits for release(). */
function createEchoHandler() {
  const waiting: (() => void)[] = [];
  let arrived: (() => void) | undefined;
  const handler: EdgeHandler = (request, response) => {
    const hash = createHash("sha256");
    let length = 0;
    request.on("data", (chunk: Buffer) => {
      hash.update(chunk);
      length += chunk.length;
    });
    request.on("end", () => {
      const answer = (): void => {
        response.end(`${request.httpVersionMajor === 2 ? "h2" : "http/1.1"} ${request.method} ${request.url} ${hash.digest("hex")} ${length}`);
      };
      if (request.url === "/slow") {
        waiting.push(answer);
        arrived?.();
      } else answer();
    });
  };
  return {
    handler,
    /** Resolves once a /slow request is waiting. */
    slowArrived: () =>
      new Promise<void>((resolve) => {
        if (waiting.length > 0) resolve();
        else arrived = resolve;
      }),
    release: () =>
      waiting.splice(0).forEach((answer) => {
        answer();
      }),
  };
}

async function start(t: TestScope, handler: EdgeHandler, options: { headersTimeoutMs?: number; streamHandler?: EdgeStreamHandler } = {}): Promise<{ server: EdgeServer; port: number }> {
  const server = createEdgeServer({ handler, log: createSilentLogger(), ...options });
  const port = await server.listen("127.0.0.1", 0);
  t.onTestFinished(async () => {
    await server.close(0);
  });
  return { server, port };
}

function http1(port: number, path: string, body?: Buffer, agent?: http.Agent): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: "127.0.0.1", port, path, method: body ? "POST" : "GET", ...(agent ? { agent } : {}) }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, text: Buffer.concat(chunks).toString() }));
    });
    request.on("error", reject);
    request.end(body);
  });
}

async function h2(port: number, path: string, body?: Buffer): Promise<string> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    const stream = session.request({ ":path": path, ":method": body ? "POST" : "GET" });
    stream.end(body);
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    await once(stream, "end");
    return Buffer.concat(chunks).toString();
  } finally {
    session.close();
  }
}

const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

describe("edge server: HTTP/1.1 and h2c on one plaintext port", () => {
  test("an HTTP/1.1 client and an h2c client are both served on the same port", TIMEOUT, async (t) => {
    const { port } = await start(t, createEchoHandler().handler);
    assert.match((await http1(port, "/a")).text, /^http\/1.1 GET \/a /);
    assert.match(await h2(port, "/b"), /^h2 GET \/b /);
  });

  test("large bodies arrive intact on both paths: the sniffed bytes are put back in order", TIMEOUT, async (t) => {
    const { port } = await start(t, createEchoHandler().handler);
    const body = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31 + 7) & 0xff;
    assert.equal((await http1(port, "/upload", body)).text, `http/1.1 POST /upload ${sha256(body)} ${body.length}`);
    assert.equal(await h2(port, "/upload", body), `h2 POST /upload ${sha256(body)} ${body.length}`);
  });

  test("a preface that arrives a few bytes at a time is still recognised", TIMEOUT, async (t) => {
    const { port } = await start(t, createEchoHandler().handler);
    const socket = net.connect(port, "127.0.0.1");
    await once(socket, "connect");
    const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    for (let i = 0; i < preface.length; i += 5) {
      socket.write(preface.subarray(i, i + 5));
      await new Promise((resolve) => setImmediate(resolve));
    }
    // The HTTP/2 server answers the preface with its SETTINGS frame (type 0x4).
    const [frame] = (await once(socket, "data")) as [Buffer];
    assert.equal(frame[3], 0x04);
    socket.destroy();
  });

  test("a kept-alive HTTP/1.1 connection serves request after request", TIMEOUT, async (t) => {
    const { port } = await start(t, createEchoHandler().handler);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.onTestFinished(() => agent.destroy());
    const ports = new Set<number>();
    agent.on("free", (socket: net.Socket) => ports.add(socket.localPort ?? 0));
    for (const path of ["/1", "/2", "/3"]) assert.match((await http1(port, path, Buffer.from("x"), agent)).text, new RegExp(`POST ${path} `));
    assert.equal(ports.size, 1);
  });

  test("a connection that never sends a byte, or never finishes its headers, is closed", TIMEOUT, async (t) => {
    const { port } = await start(t, createEchoHandler().handler, { headersTimeoutMs: 300 });
    const silent = net.connect(port, "127.0.0.1");
    const slow = net.connect(port, "127.0.0.1");
    slow.write("GET / HTTP/1.1\r\nHost: x\r\n");
    // Flowing, so the server's end of the connection is seen as "close".
    silent.resume();
    slow.resume();
    const started = Date.now();
    await Promise.all([once(silent, "close"), once(slow, "close")]);
    assert.ok(Date.now() - started < 5000);
  });

  test("close() lets a request in flight finish, answers it with Connection: close, and refuses new connections", TIMEOUT, async (t) => {
    const echo = createEchoHandler();
    const { server, port } = await start(t, echo.handler);
    const inFlight = http1(port, "/slow");
    await echo.slowArrived();
    assert.equal(server.inFlight(), 1);
    const closing = server.close(5000);
    await new Promise((resolve) => setImmediate(resolve));
    await assert.rejects(http1(port, "/late"), /ECONNREFUSED/);
    echo.release();
    const answer = await inFlight;
    assert.match(answer.text, /GET \/slow /);
    assert.equal(answer.headers.connection, "close");
    assert.deepEqual(await closing, { drained: true, cutOff: [] });
  });

  test("close() cuts off what is still running after the grace period", TIMEOUT, async (t) => {
    const echo = createEchoHandler();
    const { server, port } = await start(t, echo.handler);
    const inFlight = http1(port, "/slow");
    await echo.slowArrived();
    assert.deepEqual(await server.close(100), { drained: false, cutOff: ["HTTP/1.1 GET /slow"] });
    await assert.rejects(inFlight, /socket hang up|ECONNRESET/);
  });

  test("requests answered out of order leave the in-flight count, and the rest are cut off oldest first", TIMEOUT, async (t) => {
    const held = new Map<string, () => void>();
    let arrived: (() => void) | undefined;
    const { server, port } = await start(t, (request, response) => {
      request.resume();
      held.set(request.url ?? "", () => response.end("late"));
      arrived?.();
    });
    const calls: Promise<unknown>[] = [];
    for (const path of ["/one", "/two", "/three"]) {
      const here = new Promise<void>((resolve) => {
        arrived = resolve;
      });
      // Each on its own connection, so none waits behind another.
      calls.push(http1(port, path, undefined, new http.Agent()).catch((error: unknown) => error));
      await here;
    }
    assert.equal(server.inFlight(), 3);
    held.get("/two")?.();
    assert.equal((await calls[1]) instanceof Error, false, "the answered one arrives whole");
    assert.equal(server.inFlight(), 2);
    assert.deepEqual(await server.close(100), { drained: false, cutOff: ["HTTP/1.1 GET /one", "HTTP/1.1 GET /three"] });
    await Promise.all(calls);
  });

  test("close() sends HTTP/2 clients GOAWAY and waits for their open streams", TIMEOUT, async (t) => {
    const echo = createEchoHandler();
    const { server, port } = await start(t, echo.handler);
    const session = http2.connect(`http://127.0.0.1:${port}`);
    t.onTestFinished(() => session.destroy());
    const stream = session.request({ ":path": "/slow" });
    stream.end();
    await echo.slowArrived();
    const goaway = once(session, "goaway");
    const closing = server.close(5000);
    await goaway;
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    echo.release();
    await once(stream, "end");
    assert.match(Buffer.concat(chunks).toString(), /^h2 GET \/slow /);
    assert.deepEqual(await closing, { drained: true, cutOff: [] });
  });

  test("a stream handler takes the HTTP/2 streams it wants; the rest reach the request handler", TIMEOUT, async (t) => {
    const echo = createEchoHandler();
    const { server, port } = await start(t, echo.handler, {
      streamHandler: (stream, headers) => {
        if (headers[":path"] !== "/raw") return false;
        stream.respond({ ":status": 200 }, { waitForTrailers: true });
        stream.once("wantTrailers", () => stream.sendTrailers({ "x-answered-by": "stream handler" }));
        stream.end("raw");
        return true;
      },
    });
    assert.equal(await h2(port, "/raw"), "raw");
    assert.match(await h2(port, "/echo", Buffer.from("x")), /^h2 POST \/echo /);
    // HTTP/1.1 never meets the stream handler.
    assert.match((await http1(port, "/raw")).text, /^http\/1\.1 GET \/raw /);
    assert.equal(server.inFlight(), 0);
  });

  test("HTTP/2 connections get the platform's stream tables, on the stream handler's path and on the request handler's", TIMEOUT, async (t) => {
    const tables = (session: Http2Session | undefined): string => (session && hasStreamTables(session) ? "tables" : "node's map");
    const { port } = await start(
      t,
      (request, response) => {
        response.end(request.httpVersionMajor === 2 ? tables((request as Http2ServerRequest).stream.session) : "http/1.1");
      },
      {
        streamHandler: (stream, headers) => {
          if (headers[":path"] !== "/raw") return false;
          stream.respond({ ":status": 200 }, { waitForTrailers: true });
          stream.once("wantTrailers", () => stream.sendTrailers({}));
          stream.end(tables(stream.session));
          return true;
        },
      },
    );
    assert.equal(await h2(port, "/raw"), "tables");
    assert.equal(await h2(port, "/compat"), "tables");
  });

  test("a stream the stream handler took is in flight until answered: close() waits for it, or names it when cut off", TIMEOUT, async (t) => {
    const taken: ((text: string) => void)[] = [];
    let arrived: (() => void) | undefined;
    const { server, port } = await start(t, createEchoHandler().handler, {
      streamHandler: (stream) => {
        stream.on("error", () => {});
        taken.push((text) => {
          stream.respond({ ":status": 200 }, { waitForTrailers: true });
          stream.once("wantTrailers", () => stream.sendTrailers({}));
          stream.end(text);
        });
        arrived?.();
        return true;
      },
    });
    const waitFor = (count: number) =>
      new Promise<void>((resolve) => {
        arrived = () => {
          if (taken.length >= count) resolve();
        };
        arrived();
      });

    const first = h2(port, "/held", Buffer.from("a"));
    await waitFor(1);
    assert.equal(server.inFlight(), 1);
    taken[0]!("first");
    assert.equal(await first, "first");
    assert.equal(server.inFlight(), 0);

    const second = h2(port, "/held", Buffer.from("b"));
    await waitFor(2);
    const closing = server.close(5000);
    assert.equal(server.inFlight(), 1, "close() waits for the taken stream");
    taken[1]!("second");
    assert.equal(await second, "second");
    assert.deepEqual(await closing, { drained: true, cutOff: [] });
  });

  test("a taken stream still unanswered after the grace period is cut off and named", TIMEOUT, async (t) => {
    let arrived: (() => void) | undefined;
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    const { server, port } = await start(t, createEchoHandler().handler, {
      streamHandler: (stream) => {
        stream.on("error", () => {});
        arrived?.();
        return true;
      },
    });
    const stuck = h2(port, "/never", Buffer.from("x"));
    await reached;
    assert.deepEqual(await server.close(100), { drained: false, cutOff: ["HTTP/2.0 POST /never"] });
    // Its session was destroyed: the client got no answer (an empty body, or an error).
    assert.equal(await stuck.catch(() => ""), "");
  });
});
