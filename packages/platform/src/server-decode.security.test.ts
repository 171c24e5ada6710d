import assert from "node:assert/strict";
import { Client, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { Health } from "@meshwork/contracts/health/v1/health";
import { MeshService } from "@meshwork/contracts/shop/gateway/v1/mesh";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import { createClient } from "./client.js";
import { createSilentLogger } from "./logger.js";
import { Code } from "./rpc-errors.js";
import { createGrpcHost } from "./server.js";

// Field 1, length-delimited, promising 5 bytes and carrying 1: no decoder can read it.
const TRUNCATED = Buffer.from([0x0a, 0x05, 0x41]);
// Field 1 with wire type 7, which does not exist.
const BAD_WIRE_TYPE = Buffer.from([0x0f, 0x01]);

async function serve(t: TestScope) {
  const host = createGrpcHost({ name: "test", log: createSilentLogger() });
  let handled = 0;
  host.add(CatalogService, {
    listProducts: async () => {
      handled++;
      return { products: [] };
    },
    getProduct: async (request) => {
      handled++;
      return { product: { id: request.productId, name: "P" } };
    },
  });
  host.add(MeshService, {
    getMeshStatus: async () => ({ services: [] }),
    async *watchMeshStatus() {
      handled++;
      yield { services: [] };
    },
  });
  const port = await host.listen({ host: "127.0.0.1", port: 0 });
  host.setServing(true);
  t.onTestFinished(async () => {
    await host.shutdown(100);
  });
  // A raw client: it sends whatever bytes it is given, as a hostile caller would.
  const raw = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  t.onTestFinished(() => raw.close());
  const identity = (bytes: Buffer): Buffer => bytes;
  const unary = (path: string, bytes: Buffer) =>
    new Promise<ServiceError>((resolve, reject) => {
      raw.makeUnaryRequest(path, identity, identity, bytes, new Metadata(), (error) => (error ? resolve(error) : reject(new Error(`${path} accepted malformed bytes`))));
    });
  const stream = (path: string, bytes: Buffer) =>
    new Promise<ServiceError>((resolve, reject) => {
      const call = raw.makeServerStreamRequest(path, identity, identity, bytes, new Metadata());
      call.on("data", () => reject(new Error(`${path} streamed an answer to malformed bytes`)));
      call.on("error", resolve);
      call.on("end", () => reject(new Error(`${path} ended without an error`)));
    });
  return { port, unary, stream, handled: () => handled };
}

describe("grpc-js services refuse undecodable request bytes as the caller's error", () => {
  test("malformed bytes to a unary RPC are INVALID_ARGUMENT naming the method and the problem, and the handler never runs", async (t) => {
    const { unary, handled } = await serve(t);
    for (const bytes of [TRUNCATED, BAD_WIRE_TYPE]) {
      const error = await unary("/shop.catalog.v1.CatalogService/GetProduct", bytes);
      assert.equal(error.code, Code.INVALID_ARGUMENT, `${bytes.toString("hex")}: ${Code[error.code]} ${error.details}`);
      assert.match(error.details, /^malformed request body for \/shop\.catalog\.v1\.CatalogService\/GetProduct: \S/);
    }
    assert.equal(handled(), 0);
  });

  test("malformed bytes to a server-streaming RPC are INVALID_ARGUMENT too", async (t) => {
    const { stream, handled } = await serve(t);
    const error = await stream("/shop.gateway.v1.MeshService/WatchMeshStatus", TRUNCATED);
    assert.equal(error.code, Code.INVALID_ARGUMENT, `${Code[error.code]} ${error.details}`);
    assert.equal(handled(), 0);
  });

  test("health's Check (grpc-health-check's own handler) answers malformed bytes INVALID_ARGUMENT", async (t) => {
    const { unary } = await serve(t);
    // Its protobufjs decoder shrugs at short lengths and bad wire types; a tag cut in half it refuses.
    const error = await unary(`/${Health.typeName}/Check`, Buffer.from([0xff]));
    assert.equal(error.code, Code.INVALID_ARGUMENT, `${Code[error.code]} ${error.details}`);
  });

  test("after malformed calls the server still answers well-formed ones", async (t) => {
    const { port, unary } = await serve(t);
    await unary("/shop.catalog.v1.CatalogService/GetProduct", TRUNCATED);
    const { client, close } = createClient(CatalogService, { target: `127.0.0.1:${port}` });
    t.onTestFinished(close);
    const response = await client.getProduct({ productId: "A1" });
    assert.equal(response.product?.id, "A1");
  });
});
