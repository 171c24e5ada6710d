/**
 * The local mesh, multi-process: seven processes (notifications twice) on
 * PostgreSQL (a database and role each) and RabbitMQ, and the shopper's flow
 * through the gateway with a Connect and a grpc-js client: the order is
 * CONFIRMED and its notification arrives on the live stream exactly once.
 */
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import amqp from "amqplib";
import { amqpTopologyOf, deleteAmqpTopology } from "@meshwork/platform";
import { adminUrl, amqpUrl, connectRabbit, createTestDatabase } from "@meshwork/platform/testing";
import { startMesh } from "../../scripts/lib/mesh.js";
import { shopperFlowThroughGateway } from "./shop-flow.js";

test("multi-process on PostgreSQL and RabbitMQ: order CONFIRMED and one notification on the stream, over Connect and gRPC through the gateway", { timeout: 240_000 }, async (t) => {
  // Both probes skip (or fail in CI) without the infrastructure.
  if ((await createTestDatabase(t, "mesh_probe")) === undefined) return;
  if (!(await connectRabbit(t))) return;
  const id = randomBytes(3).toString("hex");
  const exchange = `test.mesh.${id}`;
  const queue = `test.mesh.notifications.${id}`;
  const lines: string[] = [];
  const mesh = await startMesh({
    adminUrl: adminUrl(),
    amqpUrl: amqpUrl(),
    databaseSuffix: `_m${id}`,
    // Below Linux's ephemeral range (32768+), where port-0 servers of parallel tests land.
    basePort: 21_000 + Math.floor(Math.random() * 1100) * 10,
    exchange,
    queue,
    env: { IDENTITY_SCRYPT_N: "1024", NOTIFICATIONS_WATCH_POLL_MS: "200", NOTIFICATIONS_RETRY_DELAYS_MS: "200" },
    output: (line) => void lines.push(line),
  }).catch((error: unknown) => {
    process.stderr.write(`mesh output (last 40 lines):\n${lines.slice(-40).join("\n")}\n`);
    throw error;
  });
  t.after(async () => {
    await mesh.stop();
    await mesh.dropDatabases();
    const connection = await amqp.connect(amqpUrl());
    const channel = await connection.createChannel();
    await deleteAmqpTopology(channel, amqpTopologyOf({ exchange, bindings: [], queue, retryDelaysMs: [200] })).catch(() => undefined);
    await channel.deleteExchange(exchange).catch(() => undefined);
    await connection.close();
  });
  try {
    await shopperFlowThroughGateway(mesh.gatewayPort);
  } catch (error) {
    process.stderr.write(`mesh output (last 40 lines):\n${lines.slice(-40).join("\n")}\n`);
    throw error;
  }
});
