/**
 * The shop in containers, as users run it (`npm run compose:up`, or
 * `docker compose up --build` where images can be pulled): every check goes
 * through the published ports (the gateway on 127.0.0.1:8080, RabbitMQ's API
 * on 15672, Prometheus on 9090, the OTLP receiver on 4318) or `docker exec`
 * into the containers. The tests run in order, each leaving the compose
 * running and healthy for the next; test/compose/setup.ts builds, starts and
 * always tears down.
 */
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ServerReflection } from "@meshwork/contracts/grpc/reflection/v1/reflection";
import { Health, HealthCheckResponse_ServingStatus } from "@meshwork/contracts/health/v1/health";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { MeshService } from "@meshwork/contracts/shop/gateway/v1/mesh";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { OrderService, OrderStatus } from "@meshwork/contracts/shop/orders/v1/orders";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { composeInherit, composeSetup, containers, docker, type ContainerState, waitHealthy } from "../../scripts/lib/compose.js";
import { connectClient, signedInShopper, transportsFor } from "../e2e/gateway-harness.js";
import { shopperFlowThroughGateway } from "../e2e/shop-flow.js";

const GATEWAY = "http://127.0.0.1:8080";
const APP_SERVICES = ["gateway", "identity", "catalog", "orders", "payments", "notifications-1", "notifications-2"];
const FINAL = new Set([OrderStatus.CONFIRMED, OrderStatus.REJECTED, OrderStatus.FAILED]);
const transport = createConnectTransport({ baseUrl: GATEWAY, httpVersion: "1.1" });
const identity = createClient(IdentityService, transport);
const catalog = createClient(CatalogService, transport);
const orders: Client<typeof OrderService> = createClient(OrderService, transport);
/** What could not be checked here, printed at the end. */
const uncheckable: string[] = [];

interface Shopper {
  readonly headers: { authorization: string };
}

async function shopper(name: string): Promise<Shopper> {
  return { headers: { authorization: (await signedInShopper(identity, name)).authorization } };
}

/** The product with the most units left, so the tests' orders are not refused for want of stock. */
async function firstProductId(): Promise<string> {
  const { products } = await catalog.listProducts({ pageSize: 100 });
  assert.ok(products.length > 0, "the catalog lists no products");
  return [...products].sort((a, b) => b.stockAvailable - a.stockAvailable)[0]!.id;
}

const byService = async (service: string): Promise<ContainerState> => {
  const found = (await containers()).find((container) => container.service === service);
  assert.ok(found, `no container for ${service}`);
  return found;
};

/** Runs a command in a service's container; resolves with its output, or rejects with it. */
async function exec(service: string, command: readonly string[]): Promise<string> {
  return docker(["exec", (await byService(service)).id, ...command]);
}

/** Runs a command in a service's container and returns its exit code and output, whatever the code. */
async function tryExec(service: string, command: readonly string[]): Promise<{ code: number; output: string }> {
  try {
    return { code: 0, output: await exec(service, command) };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === "number" ? failed.code : -1, output: `${failed.stdout ?? ""}${failed.stderr ?? ""}`.trim() };
  }
}

/** A generated secret, read inside the one container that mounts it (compose.yaml's secrets step wrote it). */
async function secretOf(service: string, file: string): Promise<string> {
  return exec(service, ["cat", `/run/secrets/meshwork/${file}`]);
}

/** A Node script run in a service's container, where its own npm packages (pg, amqplib) resolve. */
const nodeIn = (service: string, script: string) => tryExec(service, ["node", "-e", script]);

/** psql as the superuser inside the PostgreSQL container (the socket, trusted there). */
async function sql(database: string, query: string): Promise<string[]> {
  return (await exec("postgres", ["psql", "-U", "postgres", "-d", database, "-Atc", query])).split("\n").filter(Boolean);
}

/** pg_dump of a whole database's rows, as a stolen backup would hold them. */
const dumpOf = (database: string): Promise<string> => exec("postgres", ["pg_dump", "-U", "postgres", "--data-only", database]);

/** Reads a stream to its end; the error it ended with, if any. */
async function refusalOf(stream: AsyncIterable<unknown>): Promise<ConnectError | undefined> {
  try {
    for await (const _ of stream);
    return undefined;
  } catch (error) {
    return ConnectError.from(error);
  }
}

/** GetOrder until the order is final, riding out the gateway's or orders' restarts. */
async function finalStatus(shopper: Shopper, orderId: string, timeoutMs: number): Promise<OrderStatus> {
  const deadline = Date.now() + timeoutMs;
  let last = "never answered";
  while (Date.now() < deadline) {
    try {
      const { order } = await orders.getOrder({ orderId }, { headers: shopper.headers, timeoutMs: 5000 });
      if (order && FINAL.has(order.status)) return order.status;
      last = OrderStatus[order?.status ?? 0] ?? "?";
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await sleep(250);
  }
  throw new Error(`order ${orderId} not final within ${timeoutMs} ms (last: ${last})`);
}

const RETRYABLE = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.Canceled, Code.Internal, Code.Unknown, Code.ResourceExhausted, Code.Aborted]);

/** PlaceOrder with one idempotency key, resent until acknowledged (the key makes resending safe). */
async function placeUntilAcknowledged(who: Shopper, productId: string, key: string, deadline: number): Promise<string | undefined> {
  let orderId: string | undefined;
  while (Date.now() < deadline) {
    try {
      const { order } = await orders.placeOrder({ idempotencyKey: key, items: [{ productId, quantity: 1 }], paymentMethod: { cardToken: "tok_visa" } }, { headers: who.headers, timeoutMs: 5000 });
      if (orderId !== undefined) assert.equal(order!.id, orderId, `key ${key} answered two order ids`);
      return order!.id;
    } catch (error) {
      if (!(error instanceof ConnectError) || !RETRYABLE.has(error.code)) throw error;
      await sleep(200);
    }
  }
  return orderId;
}

async function prometheusQuery(query: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const response = await fetch(`http://127.0.0.1:9090/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = (await response.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  assert.equal(body.status, "success");
  return body.data.result;
}

/** Polls until `check` returns a value that is not undefined, or fails naming what it saw last. */
async function eventually<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await sleep(500);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${last instanceof Error ? last.message : String(last)})` : ""}`);
}

beforeAll(async () => {
  if ((await composeSetup()).offline) {
    uncheckable.push(
      "Consul discovery and live settings through an agent (no Consul package exists here: the offline run uses compose DNS names and a live settings file, as Kubernetes does)",
      "the Jaeger UI (no Jaeger package: the project's OTLP receiver takes the spans in its place)",
      "the pinned third-party images themselves (postgres, rabbitmq, prom/prometheus, hashicorp/consul, jaegertracing/jaeger): no registry answers, Debian stand-ins ran instead",
    );
  }
});

afterAll(() => {
  if (uncheckable.length > 0) process.stdout.write(`\nnot checked in containers here:\n${uncheckable.map((line) => `  - ${line}`).join("\n")}\n`);
});

describe("the shop in containers", () => {
  test("the shopper's flow through the gateway on 127.0.0.1:8080: sign up, order, CONFIRMED, one notification (Connect and gRPC)", async () => {
    await shopperFlowThroughGateway(8080);
    const page = await fetch(`${GATEWAY}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
  });

  test("both notifications replicas consume the order events (competing consumers)", async () => {
    const who = await shopper("replicas");
    const productId = await firstProductId();
    // Enough events that both consumers take some: each order publishes several.
    for (let i = 0; i < 6; i++) {
      const orderId = await placeUntilAcknowledged(who, productId, `replicas-${randomUUID()}`, Date.now() + 30_000);
      expect(await finalStatus(who, orderId!, 30_000)).toBe(OrderStatus.CONFIRMED);
    }
    // Prometheus (scraping every 15 s) sees both instances' consumer metric move.
    const perInstance = await eventually("both replicas' consumed counts in Prometheus", 60_000, async () => {
      const result = await prometheusQuery('sum by (instance) (meshwork_queue_consume_lag_seconds_count{service="notifications"})');
      const counts = new Map(result.map((series) => [series.metric.instance!, Number(series.value[1])]));
      return counts.size === 2 && [...counts.values()].every((count) => count > 0) ? counts : undefined;
    });
    expect([...perInstance.keys()].sort()).toEqual(["notifications-1:9469", "notifications-2:9469"]);
    // And RabbitMQ's management API, on the published port, sees two consumers on the notifications queue.
    // The management API's own admin, generated (the services' users have no management access).
    const auth = `Basic ${Buffer.from(`meshwork-admin:${await secretOf("rabbitmq", "admin-password")}`).toString("base64")}`;
    const queues = (await (await fetch("http://127.0.0.1:15672/api/queues", { headers: { authorization: auth } })).json()) as { name: string; consumers: number }[];
    const consumed = queues.filter((queue) => queue.name.startsWith("notifications"));
    expect(consumed.length).toBeGreaterThan(0);
    expect(consumed.some((queue) => queue.consumers === 2)).toBe(true);
  });

  test("one order is one trace across at least five containers, at the OTLP receiver in Jaeger's place", async () => {
    const who = await shopper("traced");
    const productId = await firstProductId();
    const traceId = randomBytes(16).toString("hex");
    const { order } = await orders.placeOrder(
      { idempotencyKey: `traced-${randomUUID()}`, items: [{ productId, quantity: 1 }], paymentMethod: { cardToken: "tok_visa" } },
      { headers: { ...who.headers, traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01` } },
    );
    expect(await finalStatus(who, order!.id, 30_000)).toBe(OrderStatus.CONFIRMED);
    const services = await eventually("spans of the order's trace from five services", 60_000, async () => {
      const spans = (await (await fetch(`http://127.0.0.1:4318/api/spans?trace_id=${traceId}`)).json()) as { service: string }[];
      const seen = new Set(spans.map((span) => span.service));
      return seen.size >= 5 ? seen : undefined;
    });
    expect([...services]).toEqual(expect.arrayContaining(["gateway", "orders", "catalog", "payments", "notifications"]));
  });

  test("orders killed mid-flow comes back by its restart policy; every acknowledged order ends final, none twice", async () => {
    const shoppers = await Promise.all(["kill-a", "kill-b", "kill-c", "kill-d"].map((name) => shopper(name)));
    const productId = await firstProductId();
    const before = await byService("orders");
    const acknowledged: { who: Shopper; key: string; orderId: string; at: number }[] = [];
    let killedAt = 0;
    let backAt = 0;
    let stop = false;
    const deadline = Date.now() + 120_000;
    let markBack!: () => void;
    const isBack = new Promise<void>((resolve) => {
      markBack = resolve;
    });
    // At most 20 orders each until orders is healthy again (the restarted
    // container serves before Docker's next health check says so, and
    // shoppers may use up their share in between), then at most 3 more each:
    // enough on both sides of the kill, and well within one product's stock.
    const placing = shoppers.map(async (who) => {
      let placed = 0;
      let placedAfterBack = 0;
      while (!stop && Date.now() < deadline && placedAfterBack < 3) {
        if (backAt === 0 && placed >= 20) await isBack;
        if (stop) break;
        const key = `kill-${randomUUID()}`;
        const orderId = await placeUntilAcknowledged(who, productId, key, deadline);
        if (!orderId) continue;
        acknowledged.push({ who, key, orderId, at: Date.now() });
        placed++;
        if (backAt !== 0) placedAfterBack++;
      }
    });
    // A shopper's error that is not a retryable one fails the test at once, with itself.
    const placingFailed = Promise.all(placing).then(() => new Promise<never>(() => {}));
    const orFailed = <T>(waiting: Promise<T>): Promise<T> => Promise.race([waiting, placingFailed]);
    try {
      await orFailed(eventually("orders acknowledged before the kill", 60_000, async () => (acknowledged.length >= 8 ? true : undefined)));
      // A crash, as an OOM kill or a fault would be: SIGKILL to the container's
      // process from outside. (`docker kill` would not do: Docker counts it as a
      // deliberate stop and no restart policy brings the container back.)
      process.kill(before.pid, "SIGKILL");
      killedAt = Date.now();
      const back = await orFailed(
        eventually("orders restarted and healthy", 90_000, async () => {
          const now = await byService("orders");
          return now.restartCount > before.restartCount && now.health === "healthy" ? now : undefined;
        }),
      );
      backAt = Date.now();
      markBack();
      expect(back.restartCount).toBe(before.restartCount + 1);
      const afterBack = acknowledged.length;
      await orFailed(eventually(`orders acknowledged after the restart (${afterBack} before)`, 60_000, async () => (acknowledged.length >= afterBack + 8 ? true : undefined)));
    } finally {
      stop = true;
      markBack();
      await Promise.all(placing);
    }
    const during = acknowledged.filter((entry) => entry.at >= killedAt && entry.at <= backAt).length;
    const justBefore = acknowledged.filter((entry) => entry.at < killedAt && entry.at >= killedAt - 2000).length;
    const statuses = await Promise.all(acknowledged.map((entry) => finalStatus(entry.who, entry.orderId, 90_000)));
    expect(statuses.every((status) => FINAL.has(status))).toBe(true);
    const ids = acknowledged.map((entry) => entry.orderId);
    expect(new Set(ids).size).toBe(ids.length);
    // None twice, in the databases themselves.
    const keys = acknowledged.map((entry) => `'${entry.key}'`).join(",");
    expect(await sql("meshwork_orders", `select idempotency_key from orders where idempotency_key in (${keys}) group by 1 having count(*) > 1`)).toEqual([]);
    expect(Number((await sql("meshwork_orders", `select count(*) from orders where idempotency_key in (${keys})`))[0])).toBe(acknowledged.length);
    const orderIds = ids.map((id) => `'${id}'`).join(",");
    expect(await sql("meshwork_notifications", `select order_id, subject from notifications where order_id in (${orderIds}) group by 1, 2 having count(*) > 1`)).toEqual([]);
    const confirmed = statuses.filter((status) => status === OrderStatus.CONFIRMED).length;
    expect(Number((await sql("meshwork_payments", `select count(*) from payments where status = 'authorized' and order_id in (${orderIds})`))[0])).toBe(confirmed);
    process.stdout.write(
      `kill: ${acknowledged.length} orders acknowledged (${justBefore} in the 2 s before the kill, their sagas in flight; ${during} between the kill and orders healthy again), ${confirmed} confirmed, the rest ${[...new Set(statuses.filter((s) => s !== OrderStatus.CONFIRMED).map((s) => OrderStatus[s]))].join("/") || "none"}; back healthy ${((backAt - killedAt) / 1000).toFixed(1)} s after the kill\n`,
    );
  });

  test("the PostgreSQL container restarted: the services recover without restarting", async () => {
    const before = new Map((await containers()).filter((c) => APP_SERVICES.includes(c.service)).map((c) => [c.service, c]));
    const postgres = await byService("postgres");
    await docker(["restart", "-t", "10", postgres.id]);
    await waitHealthy(60_000, ["postgres"]);
    const who = await eventually("a sign-up after the database restart", 60_000, async () => shopper("after-pg"));
    const productId = await firstProductId();
    const orderId = await placeUntilAcknowledged(who, productId, `after-pg-${randomUUID()}`, Date.now() + 60_000);
    expect(await finalStatus(who, orderId!, 60_000)).toBe(OrderStatus.CONFIRMED);
    for (const now of (await containers()).filter((c) => APP_SERVICES.includes(c.service))) {
      const then = before.get(now.service)!;
      expect({ service: now.service, restarts: now.restartCount, startedAt: now.startedAt }).toEqual({ service: now.service, restarts: then.restartCount, startedAt: then.startedAt });
    }
  });

  test("isolation, live: only payments' callers reach payments; orders' credentials cannot open identity's database", async () => {
    const probe = (target: string) =>
      `const s=require("net").connect({host:${JSON.stringify(target)},port:50054,timeout:3000});` +
      `s.on("connect",()=>{console.log("connected");process.exit(0)});s.on("timeout",()=>{console.log("timeout");process.exit(2)});s.on("error",(e)=>{console.log(e.code);process.exit(2)})`;
    // orders is on payments' network: the control.
    expect(await tryExec("orders", ["node", "-e", probe("payments")])).toEqual({ code: 0, output: "connected" });
    // catalog is not: neither the name resolves nor the address answers.
    const byName = await tryExec("catalog", ["node", "-e", probe("payments")]);
    expect(byName.code).toBe(2);
    expect(byName.output).toMatch(/^(ENOTFOUND|EAI_AGAIN)$/);
    const payments = JSON.parse(await docker(["inspect", (await byService("payments")).id])) as { NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }[];
    const address = Object.values(payments[0]!.NetworkSettings.Networks)[0]!.IPAddress;
    const byAddress = await tryExec("catalog", ["node", "-e", probe(address)]);
    expect(byAddress.code).toBe(2);
    expect(byAddress.output).toMatch(/^(timeout|EHOSTUNREACH|ENETUNREACH)$/);

    const connect = (url: string) =>
      `const {Client}=require("pg");const c=new Client(${JSON.stringify(url)});` +
      `c.connect().then(()=>{console.log("connected");return c.end()},(e)=>{console.log(e.code+" "+e.message);process.exit(3)})`;
    // orders' own URL, from its own secret file: its database opens, identity's does not.
    const ordersUrl = await secretOf("orders", "database-url");
    expect(await tryExec("orders", ["node", "-e", connect(ordersUrl)])).toEqual({ code: 0, output: "connected" });
    const foreign = await tryExec("orders", ["node", "-e", connect(ordersUrl.replace(/\/meshwork_orders$/, "/meshwork_identity"))]);
    expect(foreign.code).toBe(3);
    expect(foreign.output).toMatch(/^42501 permission denied for database "meshwork_identity"/);
  });

  test("secrets: no container's environment holds a generated secret or any credential; each volume is its consumer's alone", async () => {
    const secrets = new Map<string, string>();
    for (const role of ["superuser", "identity", "catalog", "orders", "payments", "notifications"]) secrets.set(`postgres ${role}`, await secretOf("postgres", `${role}-password`));
    for (const user of ["admin", "orders", "notifications"]) secrets.set(`rabbitmq ${user}`, await secretOf("rabbitmq", `${user}-password`));
    secrets.set("identity key-encryption-key", await secretOf("identity", "key-encryption-key"));
    for (const app of ["gateway", "identity", "catalog", "orders", "payments", "notifications-1"]) secrets.set(`${app} consul-token`, await secretOf(app, "consul-token"));
    // Each service's database password is its own: six different values.
    const databasePasswords = [...secrets].filter(([name]) => name.startsWith("postgres ")).map(([, value]) => value);
    expect(new Set(databasePasswords).size).toBe(6);
    for (const value of secrets.values()) expect(value).toMatch(/^[A-Za-z0-9_-]{36,}$/);

    const all = JSON.parse(await docker(["inspect", ...(await containers()).map((c) => c.id)])) as { Name: string; Config: { Env: string[] | null } }[];
    for (const container of all) {
      for (const entry of container.Config.Env ?? []) {
        const [key, value = ""] = entry.split(/=(.*)/s);
        for (const [name, secret] of secrets) expect(value.includes(secret), `${container.Name} ${key} holds the ${name} secret`).toBe(false);
        expect(value, `${container.Name} ${key} is a URL with credentials`).not.toMatch(/[a-z]+:\/\/[^\s/:@]+:[^\s@]+@/i);
        if (/(PASSWORD|PASS|TOKEN|SECRET|_KEY)$/.test(key!)) expect.fail(`${container.Name} sets ${key} in its environment`);
      }
    }
    // A service's volume holds its own secrets only: orders sees no other role's password, nor the superuser's.
    const ordersFiles = await exec("orders", ["sh", "-c", "cat /run/secrets/meshwork/*"]);
    for (const [name, secret] of secrets) {
      if (name === "postgres orders" || name === "rabbitmq orders" || name === "orders consul-token") continue;
      expect(ordersFiles.includes(secret), `orders can read the ${name} secret`).toBe(false);
    }
  });

  test("secrets: the superuser cannot log in over TCP from a service network, even with its password; a role cannot use another's password", async () => {
    const login = (url: string) =>
      `const {Client}=require("pg");const c=new Client(${JSON.stringify(url)});` +
      `c.connect().then(()=>{console.log("connected");return c.end()},(e)=>{console.log(e.code+" "+e.message);process.exit(3)})`;
    const superuser = await secretOf("postgres", "superuser-password");
    const asSuperuser = await nodeIn("orders", login(`postgres://postgres:${superuser}@postgres:5432/postgres`));
    expect(asSuperuser.code).toBe(3);
    expect(asSuperuser.output).toMatch(/^28000 pg_hba\.conf rejects connection for host "[^"]+", user "postgres", database "postgres"/);
    // The socket inside the PostgreSQL container is the superuser's only way in.
    expect(await sql("postgres", "select current_user")).toEqual(["postgres"]);
    // orders' role with catalog's password: refused by the password check itself.
    const catalogPassword = await secretOf("postgres", "catalog-password");
    const borrowed = await nodeIn("orders", login(`postgres://meshwork_orders:${catalogPassword}@postgres:5432/meshwork_orders`));
    expect(borrowed.code).toBe(3);
    expect(borrowed.output).toMatch(/^28P01 password authentication failed for user "meshwork_orders"/);
  });

  test("secrets: RabbitMQ refuses notifications' user publishing to the orders exchange, orders' user consuming notifications' queue, and guest", async () => {
    // Each on its own channel, inside the service's container, with the URL of its own secret file.
    const attempt = (operation: string) =>
      `const amqp=require("amqplib");const url=require("fs").readFileSync("/run/secrets/meshwork/amqp-url","utf8").trim();` +
      `amqp.connect(url).then(async(c)=>{const ch=await c.createConfirmChannel();` +
      // A refusal closes the channel: its "error" event reports it and ends the process (code 4), whichever call saw it first.
      `ch.on("error",(e)=>{console.log(e.code+" "+e.message);process.exit(4)});` +
      `try{${operation};await ch.waitForConfirms()}catch{await new Promise(()=>{})}` +
      `console.log("allowed");await c.close()},(e)=>{console.log("connect "+e.message);process.exit(5)})`;
    const forged = await nodeIn("notifications-1", attempt(`ch.publish("shop.orders.v1","order.confirmed",Buffer.from("{}"))`));
    expect(forged.code).toBe(4);
    expect(forged.output).toMatch(/^403 Channel closed by server: 403 \(ACCESS-REFUSED\) .*access to exchange 'shop\.orders\.v1' in vhost '\/' refused for user 'meshwork-notifications'/);
    const stolen = await nodeIn("orders", attempt(`await ch.consume("notifications.order-events",()=>{})`));
    expect(stolen.code).toBe(4);
    expect(stolen.output).toMatch(/^403 .*access to queue 'notifications\.order-events' in vhost '\/' refused for user 'meshwork-orders'/);
    // The control: orders may publish to its exchange.
    expect(await nodeIn("orders", attempt(`ch.publish("shop.orders.v1","order.compose-test",Buffer.from("{}"))`))).toEqual({ code: 0, output: "allowed" });
    // No default guest user, and the services' users have no management access.
    const guest = await nodeIn(
      "orders",
      `require("amqplib").connect("amqp://guest:guest@rabbitmq:5672").then(()=>{console.log("connected");process.exit(0)},(e)=>{console.log(e.message);process.exit(5)})`,
    );
    expect(guest.code).toBe(5);
    expect(guest.output).toMatch(/ACCESS_REFUSED|PLAIN login refused/);
    const ordersAuth = `Basic ${Buffer.from(`meshwork-orders:${await secretOf("rabbitmq", "orders-password")}`).toString("base64")}`;
    expect((await fetch("http://127.0.0.1:15672/api/queues", { headers: { authorization: ordersAuth } })).status).toBe(401);
  });

  test("edge, live: the published gateway serves neither MeshService nor reflection, health Watch needs a token, health Check answers", async () => {
    // compose.yaml leaves GATEWAY_MESH_STATUS, GATEWAY_REFLECTION and GATEWAY_HEALTH_WATCH at the gateway's defaults
    // (deploy/test/edge-exposure.security.int.test.ts reads the files); this is what the running container does with them.
    const h2c = transportsFor(GATEWAY)["gRPC over h2c"];
    const mesh = await connectClient(MeshService, h2c)
      .getMeshStatus({})
      .then(
        () => undefined,
        (error: unknown) => ConnectError.from(error),
      );
    expect(mesh?.code, "MeshService answered").toBe(Code.Unimplemented);
    const reflection = await refusalOf(
      connectClient(ServerReflection, h2c).serverReflectionInfo(
        (async function* () {
          yield { host: "", messageRequest: { case: "listServices" as const, value: "" } };
        })(),
      ),
    );
    expect(reflection?.code, "reflection answered").toBe(Code.Unimplemented);
    const health = connectClient(Health, h2c);
    expect((await health.check({ service: "" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect((await refusalOf(health.watch({ service: "" }, { signal: AbortSignal.timeout(10_000) })))?.code, "an anonymous Watch was held open").toBe(Code.Unauthenticated);
  });

  test("secrets at rest: identity's signing keys are sealed under the KEK, no private key in clear; card tokens are sealed while an order is pending, erased once it is final", async () => {
    // Identity: the key that signs today's tokens is stored, and every key only as ciphertext with the KEK's id.
    const who = await shopper("at-rest");
    const kid = (JSON.parse(Buffer.from(who.headers.authorization.slice("Bearer ".length).split(".")[0]!, "base64url").toString()) as { kid: string }).kid;
    const keys = (await sql("meshwork_identity", "select row_to_json(k)::text from signing_keys k")).map(
      (line) => JSON.parse(line) as { kid: string; private_jwk: string | null; sealed_private_key: string | null; kek_id: string | null },
    );
    expect(keys.map((key) => key.kid)).toContain(kid);
    for (const key of keys) {
      expect(key.private_jwk, `signing key ${key.kid} is stored in clear`).toBeNull();
      expect(key.sealed_private_key, `signing key ${key.kid} is not sealed`).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
      expect(key.kek_id, `signing key ${key.kid} names no KEK`).toMatch(/^[\w-]{16}$/);
    }
    // Nowhere in identity's database: no JWK private member, nor the KEK, which lives in identity's secrets volume only.
    const identityDump = await dumpOf("meshwork_identity");
    expect(identityDump).toContain(kid);
    expect(identityDump, "a private JWK member d in identity's database").not.toMatch(/\\?"d\\?"\s*:/);
    expect(identityDump.includes(await secretOf("identity", "key-encryption-key")), "the KEK is in identity's database").toBe(false);

    // Orders: a token of this test's own (the simulated processor approves any but the documented declines).
    const token = `tok_at_rest_${randomUUID().replaceAll("-", "")}`;
    const { order } = await orders.placeOrder(
      { idempotencyKey: `at-rest-${randomUUID()}`, items: [{ productId: await firstProductId(), quantity: 1 }], paymentMethod: { cardToken: token } },
      { headers: who.headers },
    );
    expect(await finalStatus(who, order!.id, 30_000)).toBe(OrderStatus.CONFIRMED);
    expect(await sql("meshwork_orders", `select card_token || '|' || card_token_sealed from orders where id = '${order!.id}'`), "the final order's token, clear|sealed").toEqual(["|"]);
    // Every order of this run (hundreds by now): none holds a clear token; a sealed one only while pending, in the cipher's form.
    expect(await sql("meshwork_orders", "select id || ' ' || status from orders where card_token <> ''"), "orders with a clear card token").toEqual([]);
    expect(
      await sql(
        "meshwork_orders",
        String.raw`select id || ' ' || status from orders where card_token_sealed <> '' and (status <> 'pending' or card_token_sealed !~ '^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$')`,
      ),
      "orders whose sealed token outlived the payment step, or is not sealed",
    ).toEqual([]);
    // The whole database (orders, sagas, events, outbox, history, views), as a dump: no token of any order of the run.
    const ordersDump = await dumpOf("meshwork_orders");
    expect(ordersDump).toContain(order!.id);
    expect(ordersDump.includes(token), "this test's card token is in orders' database").toBe(false);
    expect(ordersDump, "a card token (tok_...) is in orders' database").not.toContain("tok_");
  });

  test("docker-compose stop drains every service within its grace period, exit 0; down and up keep the orders", async () => {
    const setup = await composeSetup();
    const who = await shopper("kept");
    const productId = await firstProductId();
    const orderId = await placeUntilAcknowledged(who, productId, `kept-${randomUUID()}`, Date.now() + 30_000);
    expect(await finalStatus(who, orderId!, 30_000)).toBe(OrderStatus.CONFIRMED);

    const secretsBefore = await Promise.all(["orders", "identity"].map((service) => secretOf(service, "database-url")));
    const stopping = Date.now();
    await composeInherit(setup, ["stop"]);
    const stopSeconds = (Date.now() - stopping) / 1000;
    const stopped = (await containers()).filter((c) => APP_SERVICES.includes(c.service));
    expect(stopped.map((c) => ({ service: c.service, status: c.status, exitCode: c.exitCode })).sort((a, b) => a.service.localeCompare(b.service))).toEqual(
      [...APP_SERVICES].sort().map((service) => ({ service, status: "exited", exitCode: 0 })),
    );
    // compose.yaml gives every service 15 s; the whole stop (sequenced by depends_on) stays well inside the sum.
    expect(stopSeconds).toBeLessThan(15 * 3);
    process.stdout.write(`stop: every service exited 0; docker-compose stop took ${stopSeconds.toFixed(1)} s\n`);

    await composeInherit(setup, ["down"]);
    await composeInherit(setup, ["up", "-d", "--no-build"]);
    await waitHealthy(240_000);
    const { order } = await eventually("the order after down and up", 60_000, async () => orders.getOrder({ orderId: orderId! }, { headers: who.headers }));
    expect(order?.status).toBe(OrderStatus.CONFIRMED);
    // The secrets step ran again and kept every secret (the roles were created with them).
    expect(await Promise.all(["orders", "identity"].map((service) => secretOf(service, "database-url")))).toEqual(secretsBefore);
  });
});
