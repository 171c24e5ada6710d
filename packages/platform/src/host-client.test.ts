import assert from "node:assert/strict";
import { once } from "node:events";
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import { Metadata } from "@grpc/grpc-js";
import { HealthCheckResponse_ServingStatus, Health } from "@meshwork/contracts/health/v1/health";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { CatalogService, GetProductRequestSchema, GetProductResponseSchema, StockService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { MeshService } from "@meshwork/contracts/shop/gateway/v1/mesh";
import { currentCall, REQUEST_ID_HEADER, type CallContext } from "./call-context.js";
import { createClient } from "./client.js";
import type { InstanceWatch } from "./discovery/ports.js";
import { createStaticDiscovery } from "./discovery/static.js";
import { Code, invalidArgument, isRpcError, notFound, RpcError } from "./rpc-errors.js";
import { createLogger, createSilentLogger } from "./logger.js";
import { createGrpcHost, type GrpcHost } from "./server.js";
import type { ServiceHandlers } from "./service-types.js";

type CatalogHandlers = ServiceHandlers<typeof CatalogService>;

const product = (id: string) => ({ id, name: `Product ${id}`, price: { currencyCode: "EUR", amountMinor: 100n } });

async function serve(t: TestScope, catalog: Partial<CatalogHandlers>, extra?: (host: GrpcHost) => void, log = createSilentLogger(), maxConnectionAgeMs?: number) {
  const host = createGrpcHost({ name: "test", log, ...(maxConnectionAgeMs === undefined ? {} : { maxConnectionAgeMs }) });
  host.add(CatalogService, {
    listProducts: async () => ({ products: [] }),
    getProduct: async (request) => ({ product: product(request.productId) }),
    ...catalog,
  });
  extra?.(host);
  const port = await host.listen({ host: "127.0.0.1", port: 0 });
  host.setServing(true);
  t.onTestFinished(async () => {
    await host.shutdown(100);
  });
  const { client, close } = createClient(CatalogService, { target: `127.0.0.1:${port}` });
  t.onTestFinished(close);
  return { host, port, client };
}

describe("the gRPC host and its typed client", () => {
  test("a unary call returns the handler's message, typed", async (t) => {
    const { client } = await serve(t, {});
    const response = await client.getProduct({ productId: "A1" });
    assert.equal(response.product?.name, "Product A1");
    assert.equal(response.product?.price?.amountMinor, 100n);
  });

  test("unaryBytes sends the caller's bytes and returns the answer's, undecoded, with statuses as the typed client's", async (t) => {
    let seenId = "";
    const { port } = await serve(t, {
      getProduct: async (request) => {
        seenId = request.productId;
        if (request.productId === "NONE") throw notFound("no product NONE");
        return { product: product(request.productId) };
      },
    });
    const { unaryBytes, close } = createClient(CatalogService, { target: `127.0.0.1:${port}` });
    t.onTestFinished(close);
    const request = toBinary(GetProductRequestSchema, create(GetProductRequestSchema, { productId: "B2" }));
    const answer = await unaryBytes(CatalogService.method.getProduct, request);
    assert.equal(seenId, "B2");
    assert.ok(answer instanceof Uint8Array);
    assert.equal(fromBinary(GetProductResponseSchema, answer).product?.name, "Product B2");
    const missing = await unaryBytes(CatalogService.method.getProduct, toBinary(GetProductRequestSchema, create(GetProductRequestSchema, { productId: "NONE" }))).catch((error: unknown) => error);
    assert.ok(isRpcError(missing, Code.NOT_FOUND));
    assert.equal(missing.message, "no product NONE");
    // A method of another service is refused before anything is sent.
    await assert.rejects(unaryBytes(StockService.method.reserveStock, new Uint8Array()), /CatalogService has no unary method shop\.catalog\.v1\.StockService\.ReserveStock/);
  });

  test("a thrown RpcError reaches the client with its code, message and named field", async (t) => {
    const { client } = await serve(t, {
      getProduct: async () => {
        throw invalidArgument("product_id", "is required");
      },
      listProducts: async () => {
        throw notFound("no such page");
      },
    });
    const invalid = await client.getProduct({}).catch((error: unknown) => error);
    assert.ok(isRpcError(invalid, Code.INVALID_ARGUMENT));
    assert.equal(invalid.message, "product_id: is required");
    assert.equal(invalid.field, "product_id");
    const missing = await client.listProducts({}).catch((error: unknown) => error);
    assert.ok(isRpcError(missing, Code.NOT_FOUND));
  });

  test("a database that went away is answered UNAVAILABLE (try again), not INTERNAL", async (t) => {
    const { client } = await serve(t, {
      getProduct: async () => {
        throw Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" });
      },
    });
    const error = await client.getProduct({ productId: "A1" }).catch((caught: unknown) => caught);
    assert.ok(isRpcError(error, Code.UNAVAILABLE));
    assert.equal(error.message, "the service's database is unavailable; try again");
  });

  test("an unexpected error becomes INTERNAL with a generic message, and its cause is logged, not sent", async (t) => {
    const lines: string[] = [];
    const log = createLogger({ service: "test", destination: { write: (line: string) => void lines.push(line) } });
    const { client } = await serve(
      t,
      {
        getProduct: async () => {
          throw new Error("secret database detail");
        },
      },
      undefined,
      log,
    );
    const error = await client.getProduct({ productId: "A1" }).catch((caught: unknown) => caught);
    assert.ok(isRpcError(error, Code.INTERNAL));
    assert.equal(error.message, "internal error");
    assert.ok(
      lines.some((line) => line.includes("secret database detail")),
      "the cause is in the server log",
    );
    // The host keeps serving after a failed call.
    assert.ok(await client.listProducts({}));
  });

  test("a handler that throws instead of returning a rejected promise is answered the same way: INTERNAL, its cause logged", async (t) => {
    const lines: string[] = [];
    const log = createLogger({ service: "test", destination: { write: (line: string) => void lines.push(line) } });
    const throwing = (() => {
      throw new Error("thrown before any promise");
    }) as unknown as CatalogHandlers["getProduct"];
    const { client } = await serve(t, { getProduct: throwing }, undefined, log);
    const error = await client.getProduct({ productId: "A1" }).catch((caught: unknown) => caught);
    assert.ok(isRpcError(error, Code.INTERNAL));
    assert.equal(error.message, "internal error");
    assert.ok(lines.some((line) => line.includes("thrown before any promise")));
  });

  test("the handler sees the caller's deadline and request id, and the response carries the request id", async (t) => {
    let seen: CallContext | undefined;
    const { port } = await serve(t, {
      getProduct: async (request, context) => {
        seen = context;
        return { product: product(request.productId) };
      },
    });
    const { client, close } = createClient(CatalogService, { target: `127.0.0.1:${port}`, defaultTimeoutMs: 1500 });
    t.onTestFinished(close);
    await client.getProduct({ productId: "A1" }, { headers: { [REQUEST_ID_HEADER]: "req-123" } });
    assert.equal(seen?.requestId, "req-123");
    assert.match(seen?.peer ?? "", /^127\.0\.0\.1:\d+$/, "the caller's address");
    const left = seen?.timeoutMs();
    assert.ok(left !== undefined && left > 0 && left <= 1500, `remaining deadline ${left} within the client's 1500 ms`);
  });

  test("a call that completes leaves its signal un-aborted (grpc-js reports stream close as 'cancelled')", async (t) => {
    const signals: AbortSignal[] = [];
    const { client } = await serve(t, {
      getProduct: async (request, context) => {
        signals.push(context.signal);
        return { product: product(request.productId) };
      },
    });
    await client.getProduct({ productId: "A1" });
    await client.getProduct({ productId: "A2" });
    await client.getProduct({ productId: "A3" });
    // By the third reply the first call's stream has long closed.
    assert.equal(signals[0]?.aborted, false);
  });

  test("a malformed request id is replaced by a fresh one", async (t) => {
    let seen = "";
    const { client } = await serve(t, {
      getProduct: async (request, context) => {
        seen = context.requestId;
        return { product: product(request.productId) };
      },
    });
    await client.getProduct({ productId: "A1" }, { headers: { [REQUEST_ID_HEADER]: "bad id with spaces" } });
    assert.match(seen, /^[0-9a-f-]{36}$/);
  });

  test("a downstream call made inside a handler inherits the remaining deadline and the request id", async (t) => {
    let downstream: CallContext | undefined;
    const backend = await serve(t, {
      getProduct: async (request, context) => {
        downstream = context;
        return { product: product(request.productId) };
      },
    });
    const { client: toBackend, close } = createClient(CatalogService, { target: `127.0.0.1:${backend.port}`, defaultTimeoutMs: 60_000 });
    t.onTestFinished(close);
    const front = await serve(t, {
      getProduct: async (request) => {
        assert.ok(currentCall(), "the handler runs inside its call scope");
        return toBackend.getProduct({ productId: request.productId });
      },
    });
    await front.client.getProduct({ productId: "A1" }, { timeoutMs: 800, headers: { [REQUEST_ID_HEADER]: "chain-1" } });
    assert.equal(downstream?.requestId, "chain-1");
    const left = downstream?.timeoutMs();
    assert.ok(left !== undefined && left <= 800, `downstream deadline ${left} ms is bounded by the caller's 800 ms, not the client's 60 s default`);
  });

  test("a handler slower than the deadline gets DEADLINE_EXCEEDED at the client and an aborted signal at the server", async (t) => {
    let aborted: Promise<unknown> | undefined;
    const { client } = await serve(t, {
      getProduct: async (_request, context) => {
        aborted = once(context.signal, "abort");
        await aborted;
        throw new RpcError(Code.CANCELLED, "gave up");
      },
    });
    const error = await client.getProduct({ productId: "A1" }, { timeoutMs: 100 }).catch((caught: unknown) => caught);
    assert.ok(isRpcError(error, Code.DEADLINE_EXCEEDED));
    await aborted;
  });

  test("server streaming delivers every message in order, and cancelling stops the handler", async (t) => {
    let stopped!: () => void;
    const handlerStopped = new Promise<void>((resolve) => (stopped = resolve));
    const host = createGrpcHost({ name: "test", log: createSilentLogger() });
    host.add(MeshService, {
      getMeshStatus: async () => ({}),
      async *watchMeshStatus(_request, context) {
        try {
          for (let index = 0; !context.signal.aborted; index++) {
            yield { services: [{ name: `s${index}` }] };
            await new Promise((resolve) => setImmediate(resolve));
          }
        } finally {
          stopped();
        }
      },
    });
    const port = await host.listen({ host: "127.0.0.1", port: 0 });
    t.onTestFinished(async () => {
      await host.shutdown(100);
    });
    const { client, close } = createClient(MeshService, { target: `127.0.0.1:${port}` });
    t.onTestFinished(close);
    const controller = new AbortController();
    const names: string[] = [];
    for await (const message of client.watchMeshStatus({}, { signal: controller.signal })) {
      names.push(message.services[0]?.name ?? "");
      if (names.length === 5) break;
    }
    assert.deepEqual(names, ["s0", "s1", "s2", "s3", "s4"]);
    await handlerStopped;
  });

  test("health reports NOT_SERVING until the service says it serves, and per service", async (t) => {
    const host = createGrpcHost({ name: "test", log: createSilentLogger() });
    host.add(CatalogService, { listProducts: async () => ({}), getProduct: async () => ({}) });
    const port = await host.listen({ host: "127.0.0.1", port: 0 });
    t.onTestFinished(async () => {
      await host.shutdown(100);
    });
    const { client: health, close } = createClient(Health, { target: `127.0.0.1:${port}` });
    t.onTestFinished(close);
    assert.equal((await health.check({ service: "" })).status, HealthCheckResponse_ServingStatus.NOT_SERVING);
    host.setServing(true);
    assert.equal((await health.check({ service: "" })).status, HealthCheckResponse_ServingStatus.SERVING);
    assert.equal((await health.check({ service: "shop.catalog.v1.CatalogService" })).status, HealthCheckResponse_ServingStatus.SERVING);
    const unknown = await health.check({ service: "no.such.Service" }).catch((error: unknown) => error);
    assert.ok(isRpcError(unknown, Code.NOT_FOUND));
  });

  test("a service mounted without all its handlers is refused at start-up, naming the missing one", () => {
    const host = createGrpcHost({ name: "test", log: createSilentLogger() });
    assert.throws(() => host.add(StockService, { reserveStock: async () => ({}) } as unknown as ServiceHandlers<typeof StockService>), /shop\.catalog\.v1\.StockService: no handler for ReleaseStock/);
  });

  test("shutdown lets an in-flight call finish, then refuses new calls", async (t) => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inHandler = new Promise<void>((resolve) => (entered = resolve));
    const { host, client } = await serve(t, {
      getProduct: async (request) => {
        entered();
        await gate;
        return { product: product(request.productId) };
      },
    });
    const inFlight = client.getProduct({ productId: "slow" });
    await inHandler;
    assert.equal(host.inFlight(), 1);
    const stopping = host.shutdown(5_000);
    release();
    assert.equal((await inFlight).product?.id, "slow");
    assert.deepEqual(await stopping, { drained: true });
    const after = await client.getProduct({ productId: "late" }, { timeoutMs: 500 }).catch((error: unknown) => error);
    assert.ok(isRpcError(after) && (after.code === Code.UNAVAILABLE || after.code === Code.DEADLINE_EXCEEDED), `refused: ${String(after)}`);
  });

  test("shutdown cancels calls still running after the grace period", async (t) => {
    let entered!: () => void;
    const inHandler = new Promise<void>((resolve) => (entered = resolve));
    const { host, client } = await serve(t, {
      getProduct: async (_request, context) => {
        entered();
        await once(context.signal, "abort");
        return {};
      },
    });
    const stuck = client.getProduct({ productId: "stuck" }, { timeoutMs: 10_000 }).catch((error: unknown) => error);
    await inHandler;
    assert.deepEqual(await host.shutdown(100), { drained: false });
    const error = await stuck;
    assert.ok(isRpcError(error), "the stuck call ends with a status");
  });

  test("a client over discovery spreads calls round-robin across the passing instances", async (t) => {
    const hits = new Map<string, number>();
    const ports: number[] = [];
    for (const name of ["first", "second"]) {
      const { port } = await serve(t, {
        getProduct: async () => {
          hits.set(name, (hits.get(name) ?? 0) + 1);
          return {};
        },
      });
      ports.push(port);
    }
    const { resolver } = createStaticDiscovery({ catalog: ports.map((port) => `127.0.0.1:${port}`) });
    t.onTestFinished(() => resolver.close());
    const { client, close } = createClient(CatalogService, { target: resolver.watch("catalog") });
    t.onTestFinished(close);
    for (let call = 0; call < 6; call++) await client.getProduct({ productId: "A1" });
    assert.deepEqual(Object.fromEntries(hits), { first: 3, second: 3 });
  });

  test("a call waiting for discovery's first instance gives up when its caller cancels, not only at its deadline", async (t) => {
    // Discovery that has not answered yet (a Consul watch before its first result).
    const pending: InstanceWatch = { instances: () => [], ready: () => new Promise(() => {}), onChange: () => () => {}, close: () => {} };
    const { client, close } = createClient(CatalogService, { target: pending });
    t.onTestFinished(close);
    const caller = new AbortController();
    const call = client.getProduct({ productId: "A1" }, { timeoutMs: 60_000, signal: caller.signal }).catch((error: unknown) => error);
    caller.abort();
    const error = await call;
    assert.ok(isRpcError(error, Code.CANCELLED), String(error));
  });

  test("request metadata reaches the handler", async (t) => {
    let authorization: unknown;
    const { client } = await serve(t, {
      getProduct: async (_request, context) => {
        authorization = context.metadata.get("authorization")[0];
        return {};
      },
    });
    await client.getProduct({ productId: "A1" }, { headers: { authorization: "Bearer abc" } });
    assert.equal(authorization, "Bearer abc");
    assert.ok(new Metadata());
  });

  test("connections older than the host's max age are replaced: calls carry on across the replacements, and a stream opened on the first connection keeps delivering", async (t) => {
    const peers = new Set<string>();
    const { port, client, host } = await serve(
      t,
      {
        getProduct: async (request, context) => {
          peers.add(context.peer);
          return { product: product(request.productId) };
        },
      },
      undefined,
      undefined,
      150,
    );
    const { client: health, close } = createClient(Health, { target: `127.0.0.1:${port}` });
    t.onTestFinished(close);
    // Opened first: it shares the first connection with the first call.
    const watch = health.watch({ service: "" })[Symbol.asyncIterator]();
    assert.equal((await watch.next()).value?.status, HealthCheckResponse_ServingStatus.SERVING);

    // Until the client has been moved to a third connection (bounded: about 20 replacements' worth of time).
    for (let call = 0; call < 400 && peers.size < 3; call++) {
      await client.getProduct({ productId: "A1" });
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(peers.size >= 3, `calls used ${peers.size} connection(s)`);

    host.setServing(false);
    assert.equal((await watch.next()).value?.status, HealthCheckResponse_ServingStatus.NOT_SERVING);
    await watch.return?.();
  });

  test("with max age 0, one connection serves every call", async (t) => {
    const peers = new Set<string>();
    const { client } = await serve(
      t,
      {
        getProduct: async (request, context) => {
          peers.add(context.peer);
          return { product: product(request.productId) };
        },
      },
      undefined,
      undefined,
      0,
    );
    for (let call = 0; call < 30; call++) {
      await client.getProduct({ productId: "A1" });
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(peers.size, 1);
  });
});
