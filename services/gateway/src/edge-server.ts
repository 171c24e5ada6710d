/**
 * One plaintext port for HTTP/1.1 and h2c. `http2.createServer({ allowHTTP1 })`
 * only falls back to HTTP/1.1 through TLS ALPN, so without TLS the choice is
 * made here: a net.Server reads the first bytes of each connection, and hands
 * the socket to the http2 server when they are the HTTP/2 client preface,
 * to the http server otherwise. The bytes read are put back (unshift) first.
 *
 * HTTP/2 streams are offered to `streamHandler` first (the gateway's gRPC
 * path), as raw streams; those it declines get Node's compatibility
 * request and response, made here as Node's own compatibility layer makes
 * them (a server with a request listener would make them for every stream).
 */
import { once } from "node:events";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import http2, { type Http2ServerRequest, type Http2ServerResponse, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from "node:http2";
import net, { type Socket } from "node:net";
import { adoptStreamTables, type Logger } from "@meshwork/platform";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** After a drain, how long connections get to deliver answers already written before they are cut. */
const FLUSH_MS = 1000;

export type EdgeRequest = IncomingMessage | Http2ServerRequest;
export type EdgeResponse = ServerResponse | Http2ServerResponse;
export type EdgeHandler = (request: EdgeRequest, response: EdgeResponse) => void;
/**
 * Takes an HTTP/2 stream as it is, or declines it (false) for `handler`.
 * A stream taken must be answered with `respond(..., { waitForTrailers:
 * true })` and trailers: the answer counts as written when they are wanted.
 */
export type EdgeStreamHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean;

export interface EdgeServerOptions {
  readonly handler: EdgeHandler;
  /** Tried first for each HTTP/2 stream whose header block is within maxHeaderBytes. */
  readonly streamHandler?: EdgeStreamHandler;
  readonly log: Logger;
  /** A connection that has not sent its first bytes (or HTTP/1.1 request headers) by then is closed. Default 10 s. */
  readonly headersTimeoutMs?: number;
  /** A request body (HTTP/1.1) or a stream's request side (HTTP/2) must have arrived by then; responses may stream on. Default 60 s. */
  readonly requestTimeoutMs?: number;
  /** Streams an HTTP/2 connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS). Default 100. */
  readonly maxStreamsPerConnection?: number;
  /**
   * An HTTP/2 connection with no open stream, or a kept-alive HTTP/1.1
   * connection between requests, is closed after this long. Default 60 s.
   */
  readonly idleTimeoutMs?: number;
  /** Largest request header block in bytes: HTTP/1.1 answers 431, HTTP/2 refuses the stream. Default 16 KiB. */
  readonly maxHeaderBytes?: number;
}

export interface EdgeServer {
  /** Starts accepting; returns the bound port. */
  listen(host: string, port: number): Promise<number>;
  /**
   * Stops accepting connections and new requests (HTTP/2 GOAWAY, HTTP/1.1
   * `Connection: close`), waits up to `graceMs` for requests in flight, then
   * closes every connection left. `cutOff` names the requests that were
   * still running then ("HTTP/2.0 POST /shop.orders.v1.OrderService/WatchOrder").
   */
  close(graceMs: number): Promise<{ drained: boolean; cutOff: string[] }>;
  /** Requests being served right now. */
  inFlight(): number;
}

export function createEdgeServer(options: EdgeServerOptions): EdgeServer {
  const { log } = options;
  const headersTimeoutMs = options.headersTimeoutMs ?? 10_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const maxHeaderBytes = options.maxHeaderBytes ?? 16 * 1024;
  const requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
  let draining = false;
  /** Requests (or raw HTTP/2 streams) whose answer is not fully written yet, each with its "HTTP/2.0 POST /path". */
  const requests = new InFlightList();
  /** HTTP/2 streams answered in full whose client has not finished sending (see below). */
  const lingering = new Set<ServerHttp2Stream>();

  /**
   * HTTP/1.1's request timeout, for HTTP/2: a stream whose client has not
   * finished sending by then is cancelled. Without it a client could open
   * streams and send nothing more, and an open stream keeps its connection
   * from ever being idle. Answers may stream on for as long as they like:
   * only the request side is timed. `onAnswered` runs when the answer's
   * trailers are wanted: all of it is queued then.
   */
  const timeRequestSide = (stream: ServerHttp2Stream, onAnswered: () => void): void => {
    const requestTimer = setTimeout(() => {
      if (!stream.destroyed && stream.state.remoteClose !== 1) stream.close(http2.constants.NGHTTP2_CANCEL);
    }, requestTimeoutMs);
    requestTimer.unref();
    // One listener for both: the timer, and the lingering entry if any.
    stream.once("close", () => {
      clearTimeout(requestTimer);
      lingering.delete(stream);
    });
    stream.once("wantTrailers", onAnswered);
  };

  /** A raw stream `streamHandler` took: in flight until its answer is written, as a compatibility request is. */
  const trackedStream = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void => {
    const entry = requests.add(() => `HTTP/2.0 ${headers[":method"]} ${headers[":path"]}`);
    const answered = (): void => {
      if (requests.remove(entry)) changed();
    };
    stream.once("close", answered);
    timeRequestSide(stream, () => {
      answered();
      if (!stream.readableEnded) lingering.add(stream);
    });
  };
  /** Connections, and those still being sniffed. */
  const sockets = new Set<Socket>();
  const sniffing = new Set<Socket>();
  // Woken whenever a request is answered or a connection closes; close() waits on them.
  const waiters = new Set<() => void>();
  const changed = (): void =>
    waiters.forEach((wake) => {
      wake();
    });

  const tracked: EdgeHandler = (request, response) => {
    const isHttp1 = request.httpVersionMajor === 1;
    const entry = requests.add(() => `HTTP/${request.httpVersion} ${request.method} ${request.url}`, isHttp1 ? (response as ServerResponse) : undefined);
    const answered = (): void => {
      if (requests.remove(entry)) changed();
    };
    response.once("close", answered);
    if (!isHttp1) {
      // In flight until the answer is written in full, not until the stream
      // closes. A refusal (too large) is answered before the request body is
      // read, and an HTTP/2 client may then keep its half of the stream open
      // for as long as the connection lives (connect-node's does). Such a
      // stream must not hold up a drain. The compat response always ends
      // with trailers (possibly empty), sent from its own, earlier,
      // "wantTrailers" listener, so the answer is queued when this one runs.
      const stream = (request as Http2ServerRequest).stream;
      timeRequestSide(stream, () => {
        answered();
        if (!request.complete) lingering.add(stream);
      });
    }
    if (draining && isHttp1) response.setHeader("connection", "close");
    // nghttp2 applies SETTINGS_MAX_HEADER_LIST_SIZE only once the client has
    // acknowledged it, so a request sent before that (or by a client that
    // never acknowledges) arrives with headers of any size: refused here,
    // the way HTTP/1.1's parser refuses them.
    if (!isHttp1 && headerListSize(request.rawHeaders) > maxHeaderBytes) {
      response.writeHead(431, { "content-type": "text/plain; charset=utf-8" });
      response.end("request header fields too large\n");
      return;
    }
    options.handler(request, response);
  };

  const http1 = http.createServer(
    {
      headersTimeout: headersTimeoutMs,
      requestTimeout: requestTimeoutMs,
      keepAliveTimeout: idleTimeoutMs,
      maxHeaderSize: maxHeaderBytes,
      // Node checks those timeouts on this interval (30 s by default, too coarse for a 10 s limit).
      connectionsCheckingInterval: Math.max(250, Math.min(1000, headersTimeoutMs / 4)),
    },
    tracked,
  );
  // This server never listens itself, and Node only starts tracking
  // connections (the headers and request timeouts above, closeIdleConnections)
  // on "listening": without this, a slowloris client would be kept forever.
  http1.emit("listening");

  // nghttp2 enforces both settings: a stream beyond the cap is refused
  // (RST_STREAM, or GOAWAY once the client has acknowledged the cap), and so
  // is a stream whose header list is larger (RST_STREAM ENHANCE_YOUR_CALM).
  // Either way only that client's stream or connection is refused.
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: options.maxStreamsPerConnection ?? 100, maxHeaderListSize: maxHeaderBytes } });
  h2.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    // An oversized header block goes to `tracked`, which refuses it.
    if (options.streamHandler && headerListSize(rawHeaders) <= maxHeaderBytes && options.streamHandler(stream, headers)) {
      trackedStream(stream, headers);
      return;
    }
    // What Node's compatibility layer does for a server with a request
    // listener: a CONNECT is refused (this server serves no tunnels), an
    // Expect other than 100-continue is 417, 100-continue is granted.
    const request = new http2.Http2ServerRequest(stream, headers, {}, rawHeaders);
    const response = new http2.Http2ServerResponse(stream);
    if (headers[":method"] === "CONNECT") {
      response.statusCode = 405;
      response.end();
      return;
    }
    if (headers.expect !== undefined) {
      if (headers.expect !== "100-continue") {
        response.writeHead(417);
        response.end();
        return;
      }
      response.writeContinue();
    }
    tracked(request, response);
  });
  const sessions = new Set<ServerHttp2Session>();
  h2.on("session", (session: ServerHttp2Session) => {
    // Before its first stream: tables that do not promote every stream (@meshwork/platform's http2-stream-tables.ts).
    adoptStreamTables(session);
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    if (draining) session.close();
    closeWhenIdle(session, idleTimeoutMs);
  });
  h2.on("sessionError", (error) => log.debug({ err: error }, "HTTP/2 session error"));

  const acceptor = net.createServer((socket) => {
    sockets.add(socket);
    sniffing.add(socket);
    socket.once("close", () => {
      sockets.delete(socket);
      sniffing.delete(socket);
      changed();
    });
    handOver(socket, headersTimeoutMs, (isHttp2) => {
      sniffing.delete(socket);
      if (isHttp2) {
        // Not resumed: the HTTP/2 session reads the put-back bytes and the
        // socket from the native handle itself.
        h2.emit("connection", socket);
      } else {
        http1.emit("connection", socket);
        socket.resume();
      }
    });
  });
  acceptor.on("error", (error) => log.error({ err: error }, "edge server error"));

  /** Resolves with condition() once it holds, or at `deadline` with its value then. */
  const until = (condition: () => boolean, deadline: number): Promise<boolean> =>
    new Promise((resolve) => {
      const settle = (): void => {
        waiters.delete(check);
        clearTimeout(timer);
        resolve(condition());
      };
      // On a change: settle only if the condition holds (or the time is up).
      const check = (): void => {
        if (condition() || Date.now() >= deadline) settle();
      };
      // The timer settles unconditionally: it may fire a millisecond before
      // Date.now() reaches the deadline, and a check that then returned would
      // leave close() waiting for a change that may never come.
      const timer = setTimeout(settle, Math.max(0, deadline - Date.now()));
      waiters.add(check);
      check();
    });

  return {
    async listen(host, port) {
      acceptor.listen({ host, port });
      await once(acceptor, "listening");
      const address = acceptor.address();
      if (address === null || typeof address === "string") throw new Error("edge server: no TCP address after listen");
      return address.port;
    },
    async close(graceMs) {
      const deadline = Date.now() + graceMs;
      draining = true;
      acceptor.close();
      for (const socket of sniffing) socket.destroy();
      http1.closeIdleConnections();
      // A kept-alive HTTP/1.1 connection is closed after the answer in flight,
      // so its client reconnects (to another instance) for the next request.
      for (const { http1Response } of requests.entries()) if (http1Response && !http1Response.headersSent) http1Response.setHeader("connection", "close");
      // GOAWAY: no new streams; the session closes itself once its streams have.
      for (const session of sessions) session.close();

      const drained = await until(() => requests.size === 0, deadline);
      const cutOff = [...requests.entries()].map(({ label }) => label());
      if (drained) {
        // Every answer is queued; connections flush it and close by
        // themselves. A lingering stream is told to stop sending with
        // RST_STREAM NO_ERROR (RFC 9113 8.1), after its queued answer.
        for (const stream of lingering) stream.close(http2.constants.NGHTTP2_NO_ERROR);
        http1.closeIdleConnections();
        // Nothing is in flight any more: this only lets queued answers reach
        // clients before their connections are cut. A client that keeps a
        // connection open after GOAWAY or Connection: close is not waited for.
        await until(() => sockets.size === 0, Date.now() + FLUSH_MS);
      }
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
      // Stops the connection-checking interval "listening" started.
      http1.close();
      return { drained, cutOff };
    },
    inFlight: () => requests.size,
  };
}

/** A request being answered: its label for close()'s cut-off list, and its response when it is HTTP/1.1 (told to close its connection on a drain). */
interface InFlightEntry {
  readonly label: () => string;
  readonly http1Response: ServerResponse | undefined;
  previous: InFlightEntry | undefined;
  next: InFlightEntry | undefined;
  linked: boolean;
}

/**
 * The requests in flight, as a doubly linked list whose entries the
 * requests' own listeners hold. Not a Map or Set: one insert and one delete
 * per request in a long-lived Map makes V8 promote every request that passes
 * through it, as Node's HTTP/2 stream Map did (@meshwork/platform's
 * http2-stream-tables.ts says why). An unlinked entry points at nothing.
 */
class InFlightList {
  #head: InFlightEntry | undefined;
  #tail: InFlightEntry | undefined;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Appended: entries() gives the oldest request first. */
  add(label: () => string, http1Response?: ServerResponse): InFlightEntry {
    const entry: InFlightEntry = { label, http1Response, previous: this.#tail, next: undefined, linked: true };
    if (this.#tail) this.#tail.next = entry;
    else this.#head = entry;
    this.#tail = entry;
    this.#size++;
    return entry;
  }

  /** False when the entry was already removed. */
  remove(entry: InFlightEntry): boolean {
    if (!entry.linked) return false;
    if (entry.previous) entry.previous.next = entry.next;
    else this.#head = entry.next;
    if (entry.next) entry.next.previous = entry.previous;
    else this.#tail = entry.previous;
    entry.previous = undefined;
    entry.next = undefined;
    entry.linked = false;
    this.#size--;
    return true;
  }

  *entries(): IterableIterator<InFlightEntry> {
    for (let entry = this.#head; entry; entry = entry.next) yield entry;
  }
}

/**
 * A header list's size as RFC 9113 6.5.2 counts it: each field's name and
 * value, plus 32. Node decodes header bytes as latin1, one char per byte, so
 * a field's length is its size in bytes (what Buffer.byteLength(field,
 * "latin1") would say, without the call per field).
 */
function headerListSize(rawHeaders: readonly string[]): number {
  let size = 0;
  for (const field of rawHeaders) size += field.length;
  return size + (rawHeaders.length / 2) * 32;
}

/**
 * Closes (GOAWAY) an HTTP/2 session once it has had no open stream for
 * `idleMs`. Node's own session timeout counts any frame as activity, so a
 * client sending PINGs, or nothing after its SETTINGS, would hold the
 * connection for ever; here only streams count. A stream in progress is
 * never cut: the timer starts when the last one closes.
 */
function closeWhenIdle(session: ServerHttp2Session, idleMs: number): void {
  let open = 0;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (open === 0 && !session.closed) session.close();
    }, idleMs);
    timer.unref();
  };
  session.on("stream", (stream: ServerHttp2Stream) => {
    open++;
    clearTimeout(timer);
    stream.once("close", () => {
      open--;
      if (open === 0) arm();
    });
  });
  session.once("close", () => clearTimeout(timer));
  arm();
}

/**
 * Reads until the first bytes either are the HTTP/2 preface or cannot be,
 * puts them back and decides. A client sending nothing is dropped after
 * `timeoutMs`; an HTTP/1.1 request's first packet differs from the preface
 * at its second byte at the latest ("POST", "GET", "OPTIONS"), so one read is
 * nearly always enough.
 */
function handOver(socket: Socket, timeoutMs: number, decide: (isHttp2: boolean) => void): void {
  let buffered: Buffer = Buffer.alloc(0);
  const cleanUp = (): void => {
    socket.off("data", onData);
    socket.off("error", onError);
    socket.off("timeout", onTimeout);
    socket.setTimeout(0);
  };
  const onData = (chunk: Buffer): void => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    const length = Math.min(buffered.length, PREFACE.length);
    const isPrefix = buffered.subarray(0, length).equals(PREFACE.subarray(0, length));
    if (isPrefix && buffered.length < PREFACE.length) return;
    cleanUp();
    socket.pause();
    socket.unshift(buffered);
    decide(isPrefix);
  };
  const onError = (): void => {
    cleanUp();
    socket.destroy();
  };
  const onTimeout = (): void => {
    cleanUp();
    socket.destroy();
  };
  socket.on("data", onData);
  socket.on("error", onError);
  socket.on("timeout", onTimeout);
  socket.setTimeout(timeoutMs);
}
