/**
 * Issue 13, edge bounds, on the one-port edge server over real sockets: the
 * cap on concurrent streams per HTTP/2 connection, the header-size limit and
 * the idle timeout, each refusing only the offender while others are served.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import http2 from "node:http2";
import type { Socket } from "node:net";
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import { createSilentLogger } from "@meshwork/platform";
import { createEdgeServer, type EdgeHandler, type EdgeServerOptions } from "../src/edge-server.js";

const TIMEOUT = { timeout: 20_000 };

/** "/hold" answers its headers and one chunk, then waits for release(); "/upload" answers once the body has arrived; anything else at once. */
function createHoldingHandler() {
  const held: (() => void)[] = [];
  const handler: EdgeHandler = (request, response) => {
    request.resume();
    if (request.url === "/hold") {
      response.writeHead(200);
      (response as http.ServerResponse).write("holding ");
      held.push(() => response.end("released"));
    } else if (request.url === "/upload") request.once("end", () => response.end("uploaded"));
    else response.end(`served ${request.url}`);
  };
  return {
    handler,
    release: () => {
      for (const end of held.splice(0)) end();
    },
  };
}

async function start(t: TestScope, handler: EdgeHandler, options: Partial<EdgeServerOptions>): Promise<number> {
  const server = createEdgeServer({ handler, log: createSilentLogger(), ...options });
  const port = await server.listen("127.0.0.1", 0);
  t.onTestFinished(async () => {
    await server.close(0);
  });
  return port;
}

function connect(t: TestScope, port: number): http2.ClientHttp2Session {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  // Refusals under test show up as stream errors; a session error is asserted where it matters.
  session.on("error", () => {});
  t.onTestFinished(() => session.destroy());
  return session;
}

type Outcome = { status: number; body: string } | { refused: number };

/** The stream's answer in full, or the RST_STREAM code it was refused with (known once it has closed). */
function outcome(stream: http2.ClientHttp2Stream): Promise<Outcome> {
  return new Promise((resolve) => {
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on("response", (headers) => (status = Number(headers[":status"])));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    // A refused stream may also end or fail first; its close carries the code either way.
    stream.on("error", () => {});
    stream.on("close", () => {
      const code = stream.rstCode ?? http2.constants.NGHTTP2_NO_ERROR;
      resolve(code === http2.constants.NGHTTP2_NO_ERROR ? { status, body: Buffer.concat(chunks).toString() } : { refused: code });
    });
  });
}

function request(session: http2.ClientHttp2Session, path: string, headers: http2.OutgoingHttpHeaders = {}): http2.ClientHttp2Stream {
  const stream = session.request({ ":path": path, ...headers });
  stream.end();
  return stream;
}

describe("edge bounds over real sockets", () => {
  test("the stream beyond the per-connection cap is refused while the first ones are served, and other connections go on", TIMEOUT, async (t) => {
    const holding = createHoldingHandler();
    const port = await start(t, holding.handler, { maxStreamsPerConnection: 2 });
    const greedy = connect(t, port);
    // Sent before the server's SETTINGS arrive, so the client cannot queue the third itself as a polite client would.
    const streams = [1, 2, 3].map(() => request(greedy, "/hold"));
    const answers = streams.map(outcome);
    const [firstHeaders, secondHeaders] = await Promise.all([once(streams[0]!, "response"), once(streams[1]!, "response")]);
    assert.equal(firstHeaders[0][":status"], 200);
    assert.equal(secondHeaders[0][":status"], 200);
    assert.deepEqual(await answers[2], { refused: http2.constants.NGHTTP2_REFUSED_STREAM });
    assert.equal(greedy.remoteSettings.maxConcurrentStreams, 2, "the cap is announced in SETTINGS");

    const other = connect(t, port);
    assert.deepEqual(await outcome(request(other, "/next")), { status: 200, body: "served /next" });
    holding.release();
    assert.deepEqual(await answers[0], { status: 200, body: "holding released" });
  });

  test("an HTTP/2 header list above the limit is refused, before and after the client acknowledged the limit, and the connection goes on", TIMEOUT, async (t) => {
    const port = await start(t, createHoldingHandler().handler, { maxHeaderBytes: 4096 });
    const big = { "x-filler": "a".repeat(6000) };

    // Before the client has acknowledged SETTINGS nghttp2 does not apply the limit yet: the edge answers 431 itself.
    const early = connect(t, port);
    assert.deepEqual(await outcome(request(early, "/early", big)), { status: 431, body: "request header fields too large\n" });
    assert.deepEqual(await outcome(request(early, "/after-early")), { status: 200, body: "served /after-early" });

    const late = connect(t, port);
    await once(late, "remoteSettings");
    assert.equal(late.remoteSettings.maxHeaderListSize, 4096);
    assert.deepEqual(await outcome(request(late, "/late", big)), { refused: http2.constants.NGHTTP2_ENHANCE_YOUR_CALM });
    assert.deepEqual(await outcome(request(late, "/after-late", { "x-small": "b".repeat(1000) })), { status: 200, body: "served /after-late" });
  });

  test("HTTP/1.1 request headers above the limit get 431, and the server goes on serving", TIMEOUT, async (t) => {
    const port = await start(t, createHoldingHandler().handler, { maxHeaderBytes: 4096 });
    const get = (headers: http.OutgoingHttpHeaders) =>
      new Promise<number>((resolve, reject) => {
        const req = http.get({ host: "127.0.0.1", port, path: "/", headers, agent: false }, (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        });
        req.on("error", reject);
      });
    assert.equal(await get({ "x-filler": "a".repeat(6000) }), 431);
    assert.equal(await get({ "x-small": "b".repeat(1000) }), 200);
  });

  test("an HTTP/2 connection with no open stream is closed after the idle timeout, PINGs or not; one with a stream in progress is not", TIMEOUT, async (t) => {
    const holding = createHoldingHandler();
    const port = await start(t, holding.handler, { idleTimeoutMs: 400 });

    const done = connect(t, port);
    assert.deepEqual(await outcome(request(done, "/once")), { status: 200, body: "served /once" });
    const pinging = connect(t, port);
    await once(pinging, "connect");
    // A PING is activity for Node's own session timeout, not here: only streams keep a connection.
    const pings = setInterval(() => {
      if (!pinging.closed && !pinging.destroyed) pinging.ping(() => {});
    }, 100);
    pinging.once("close", () => clearInterval(pings));
    t.onTestFinished(() => clearInterval(pings));
    const busy = connect(t, port);
    const held = request(busy, "/hold");
    const heldAnswer = outcome(held);
    await once(held, "response");

    await Promise.all([once(done, "close"), once(pinging, "close")]);
    // The idle timeout has passed for the other two: the one with a stream in progress is still open.
    assert.equal(busy.closed || busy.destroyed, false);
    holding.release();
    assert.deepEqual(await heldAnswer, { status: 200, body: "holding released" });
    // Idle now, it goes the same way.
    await once(busy, "close");
  });

  test("an HTTP/2 stream whose client never finishes sending is cancelled, so it cannot hold its connection open; answers may stream on", TIMEOUT, async (t) => {
    const holding = createHoldingHandler();
    const port = await start(t, holding.handler, { headersTimeoutMs: 300, requestTimeoutMs: 300, idleTimeoutMs: 300 });
    const session = connect(t, port);
    // Headers, then silence: no body, no END_STREAM.
    const silent = session.request({ ":path": "/upload", ":method": "POST" }, { endStream: false });
    const cut = outcome(silent);
    // A stream whose request is complete and whose answer keeps streaming is left alone.
    const streaming = request(session, "/hold");
    const streamed = outcome(streaming);
    await once(streaming, "response");
    assert.deepEqual(await cut, { refused: http2.constants.NGHTTP2_CANCEL });
    assert.equal(session.closed || session.destroyed, false, "the answer still streaming keeps the connection");
    holding.release();
    assert.deepEqual(await streamed, { status: 200, body: "holding released" });
    await once(session, "close");
  });

  test("a kept-alive HTTP/1.1 connection is closed after the idle timeout between requests", TIMEOUT, async (t) => {
    const port = await start(t, createHoldingHandler().handler, { idleTimeoutMs: 300 });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.onTestFinished(() => agent.destroy());
    const socket = await new Promise<Socket>((resolve, reject) => {
      const req = http.get({ host: "127.0.0.1", port, path: "/", agent }, (response) => {
        response.resume();
        response.on("end", () => resolve(req.socket!));
      });
      req.on("error", reject);
    });
    const idleSince = Date.now();
    await once(socket, "close");
    // Node's own keep-alive timeout is 5 s: closing well before it is this setting at work.
    assert.ok(Date.now() - idleSince < 3000, `closed after ${Date.now() - idleSince} ms`);
  });
});
