/**
 * The local mesh, multi-process: seven processes (notifications twice) on
 * PostgreSQL (a database and role each) and RabbitMQ, and the shopper's flow
 * through the gateway with a Connect and a grpc-js client: the order is
 * CONFIRMED and its notification arrives on the live stream exactly once.
 */
import { test } from "vitest";
import { shopperFlowThroughGateway } from "./shop-flow.js";
import { meshBasePort, startTestMesh } from "./test-mesh.js";

test("multi-process on PostgreSQL and RabbitMQ: order CONFIRMED and one notification on the stream, over Connect and gRPC through the gateway", { timeout: 240_000 }, async (t) => {
  const mesh = await startTestMesh(t, {
    basePort: meshBasePort(),
    env: { IDENTITY_SCRYPT_N: "1024", NOTIFICATIONS_WATCH_POLL_MS: "200", NOTIFICATIONS_RETRY_DELAYS_MS: "200" },
  });
  if (!mesh) return;
  try {
    await shopperFlowThroughGateway(mesh.gatewayPort);
  } catch (error) {
    process.stderr.write(`mesh output (last 40 lines):\n${mesh.tail(40)}\n`);
    throw error;
  }
});
