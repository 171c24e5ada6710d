/**
 * `npm run mesh`: the local mesh (scripts/lib/mesh.ts) on the PostgreSQL at
 * MESHWORK_PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres;
 * databases and roles are created when missing) and the RabbitMQ at
 * MESHWORK_AMQP_URL (default amqp://guest:guest@127.0.0.1:5672), with Consul
 * when CONSUL_HTTP_ADDR is set. Ctrl-C stops every process gracefully.
 */
import { startMesh } from "./lib/mesh.js";

async function main(): Promise<void> {
  const mesh = await startMesh({
    adminUrl: process.env.MESHWORK_PG_ADMIN_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
    amqpUrl: process.env.MESHWORK_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672",
  });
  process.stdout.write(
    [
      "",
      `The local mesh is up: ${mesh.instances.join(", ")}, each its own process, on PostgreSQL and RabbitMQ${process.env.CONSUL_HTTP_ADDR ? `, discovery through Consul at ${process.env.CONSUL_HTTP_ADDR}` : ""}.`,
      `  gateway (Connect, gRPC-web, gRPC): http://127.0.0.1:${mesh.gatewayPort}`,
      "  npm run load -- --duration=30      drives it",
      "Ctrl-C stops it.",
      "",
    ].join("\n"),
  );
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    mesh.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`mesh failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
