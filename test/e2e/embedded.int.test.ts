/**
 * `npm start`'s all-in-one mode (scripts/lib/all-in-one.ts): all six services
 * in one process on one embedded PostgreSQL and the in-process queue. The
 * shopper's flow through the gateway, with a Connect and a grpc-js client.
 * Needs no PostgreSQL or RabbitMQ, so it always runs.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "vitest";
import { startAllInOne } from "../../scripts/lib/all-in-one.js";
import { shopperFlowThroughGateway } from "./shop-flow.js";

test("the all-in-one mode: sign up, browse, order, CONFIRMED, one notification on the stream — over Connect and gRPC through the gateway", { timeout: 180_000 }, async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), "meshwork-embedded-"));
  t.onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
  const env: Record<string, string> = { IDENTITY_SCRYPT_N: "1024", NOTIFICATIONS_WATCH_POLL_MS: "200" };
  for (const prefix of ["IDENTITY", "CATALOG", "PAYMENTS", "ORDERS", "NOTIFICATIONS", "GATEWAY"]) {
    env[`${prefix}_PORT`] = "0";
    env[`${prefix}_DATA_DIR`] = dataDir;
    env[`${prefix}_LOG_LEVEL`] = "error";
  }
  const shop = await startAllInOne(env);
  t.onTestFinished(async () => {
    await shop.stop("test done");
  });
  await shopperFlowThroughGateway(shop.ports.gateway);
});
