/**
 * What the lean bind is for, measured in child processes on loopback: after
 * one full collection, how much the old generation grows per request. The
 * two runs differ in AsyncResource.prototype.bind only. (The grpc-js client
 * tables of http2-stream-tables.ts are not measured here: whether a busy
 * client without them falls into the promoting state after the collection
 * is left to chance, so a test of them could pass without them.)
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { test } from "vitest";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "..", "..", "..");
const REQUESTS = 3000;
const moduleUrl = (file: string) => JSON.stringify(path.join(import.meta.dirname, file));

/**
 * The child: `setup` defines request() (one request, resolved when it has
 * closed); the measure is the same for every setup.
 */
const script = (setup: string) => `
import v8 from "node:v8";
import { PerformanceObserver, constants } from "node:perf_hooks";
${setup}
for (let i = 0; i < 2000; i += 1) await request();
let full = 0;
const observer = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) if (entry.detail.kind !== constants.NODE_PERFORMANCE_GC_MINOR) full += 1;
});
globalThis.gc();
await new Promise((resolve) => setImmediate(resolve));
observer.observe({ entryTypes: ["gc"] });
const oldSpace = () => v8.getHeapSpaceStatistics().find((space) => space.space_name === "old_space").space_used_size;
const before = oldSpace();
for (let i = 0; i < ${REQUESTS}; i += 1) await request();
const grown = oldSpace() - before;
await new Promise((resolve) => setTimeout(resolve, 50));
observer.disconnect();
console.log(JSON.stringify({ adopted, perRequest: grown / ${REQUESTS}, full }));
process.exit(0);
`;

interface Measured {
  readonly adopted: boolean;
  readonly perRequest: number;
  readonly full: number;
}

async function measure(setup: string): Promise<Measured> {
  const { stdout } = await run(process.execPath, ["--expose-gc", "--import", "tsx", "--input-type=module", "-e", script(setup)], { cwd: root });
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

/** A plain node:http2 server and client, both on the stream tables; one request at a time. */
const plainHttp2 = (lean: boolean) => `
import http2 from "node:http2";
import { adoptStreamTables } from ${moduleUrl("http2-stream-tables.ts")};
import { adoptLeanAsyncBind } from ${moduleUrl("lean-async-bind.ts")};
const adopted = ${lean} ? adoptLeanAsyncBind() : false;
const server = http2.createServer();
server.on("session", (session) => adoptStreamTables(session));
server.on("stream", (stream) => {
  stream.resume();
  stream.on("end", () => { stream.respond({ ":status": 200 }); stream.end("answer"); });
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const session = http2.connect("http://127.0.0.1:" + server.address().port);
adoptStreamTables(session);
const request = () => new Promise((resolve, reject) => {
  const stream = session.request({ ":method": "POST", ":path": "/" });
  stream.on("data", () => {});
  stream.on("error", reject);
  stream.on("close", resolve);
  stream.end("question");
});
`;

test("after a full collection, node:http2 client requests stop growing the old generation with the lean bind", { timeout: 60_000 }, async () => {
  const [nodes, lean] = await Promise.all([measure(plainHttp2(false)), measure(plainHttp2(true))]);
  process.stdout.write(`# node:http2, old-generation growth per request: Node's bind ${nodes.perRequest.toFixed(0)} B, lean bind ${lean.perRequest.toFixed(0)} B\n`);
  assert.equal(lean.adopted, true);
  assert.equal(lean.full, 0, "no full collection emptied the old generation during the lean run");
  assert.ok(lean.perRequest < 1024, `lean bind: ${lean.perRequest.toFixed(0)} B per request reached the old generation`);
  // Why the lean bind exists. When a Node release fixes its bind, this fails: the lean bind can then go.
  assert.ok(nodes.full > 0 || nodes.perRequest > 4 * Math.max(lean.perRequest, 100), `Node's bind: ${nodes.perRequest.toFixed(0)} B per request, no longer more than the lean one`);
});
