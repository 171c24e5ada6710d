import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { AMQP_USERS, amqpPermissions } from "@meshwork/platform/queue/permissions";
import { ordersConfigSpec } from "../services/orders/src/config.js";
import { notificationsConfigSpec } from "../services/notifications/src/config.js";
import { DEFAULT_AMQP_TOPOLOGY, rabbitPasswordHash, SECRET_CONSUMERS } from "./lib/secrets.js";
import { initSecrets } from "./secrets-init.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A folder with one empty sub-folder per consumer, as compose mounts the volumes. */
function volumes(): string {
  const root = mkdtempSync(path.join(tmpdir(), "meshwork-secrets-"));
  dirs.push(root);
  for (const consumer of SECRET_CONSUMERS) mkdirSync(path.join(root, consumer));
  return root;
}
const read = (root: string, file: string) => readFileSync(path.join(root, file), "utf8");

describe("compose's secrets step (scripts/secrets-init.ts)", () => {
  test("the first run generates every secret, each different; a second run keeps them all and the URLs built from them", () => {
    const root = volumes();
    const first = initSecrets(root);
    expect(first.kept).toEqual([]);
    const passwords = ["superuser", "identity", "catalog", "orders", "payments", "notifications"].map((name) => read(root, `postgres/${name}-password`));
    expect(new Set(passwords).size).toBe(passwords.length);
    for (const password of passwords) expect(password).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(read(root, "identity/database-url")).toBe(`postgres://meshwork_identity:${read(root, "postgres/identity-password")}@postgres:5432/meshwork_identity`);
    expect(read(root, "orders/amqp-url")).toBe(`amqp://meshwork-orders:${read(root, "rabbitmq/orders-password")}@rabbitmq:5672`);
    expect(Buffer.from(read(root, "identity/key-encryption-key"), "base64url")).toHaveLength(32);
    expect(read(root, "catalog/consul-token")).toBe(read(root, "consul/catalog-token"));
    expect(read(root, "consul/management-token")).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(statSync(path.join(root, "orders/amqp-url")).mode & 0o777).toBe(0o444);

    const before = new Map(first.created.map((file) => [file, read(root, file)]));
    const second = initSecrets(root);
    expect(second.created).toEqual([]);
    expect(second.kept.sort()).toEqual([...before.keys()].sort());
    for (const [file, value] of before) expect(read(root, file)).toBe(value);
    expect(read(root, "identity/database-url")).toContain(before.get("postgres/identity-password"));
  });

  test("each consumer's volume holds only its own secrets: no service sees another's password or the superuser's", () => {
    const root = volumes();
    initSecrets(root);
    const superuser = read(root, "postgres/superuser-password");
    const ordersDb = read(root, "postgres/orders-password");
    for (const service of ["gateway", "identity", "catalog", "payments", "notifications"]) {
      const everything = ["database-url", "amqp-url", "consul-token", "key-encryption-key"].map((file) => {
        try {
          return read(root, `${service}/${file}`);
        } catch {
          return "";
        }
      });
      expect(everything.join("\n")).not.toContain(superuser);
      expect(everything.join("\n")).not.toContain(ordersDb);
    }
    expect(() => read(root, "notifications/key-encryption-key")).toThrow(/ENOENT/);
  });

  test("RabbitMQ's definitions hold salted hashes, not passwords, and the permissions of queue/permissions.ts", () => {
    const root = volumes();
    initSecrets(root);
    const definitions = read(root, "rabbitmq/definitions.json");
    const password = read(root, "rabbitmq/notifications-password");
    expect(definitions).not.toContain(password);
    const parsed = JSON.parse(definitions) as { users: { name: string; password_hash: string }[]; permissions: { user: string; configure: string; write: string; read: string }[] };
    const stored = parsed.users.find((user) => user.name === AMQP_USERS.notifications)!.password_hash;
    const salt = Buffer.from(stored, "base64").subarray(0, 4);
    expect(rabbitPasswordHash(password, salt)).toBe(stored);
    const { user: _user, ...granted } = parsed.permissions.find((entry) => entry.user === AMQP_USERS.notifications)!;
    expect(granted).toEqual({ vhost: "/", ...amqpPermissions(DEFAULT_AMQP_TOPOLOGY).notifications });
    expect(parsed.users.map((user) => user.name)).not.toContain("guest");
    expect(read(root, "rabbitmq/rabbitmq.conf")).toMatch(/^load_definitions = \/run\/secrets\/meshwork\/definitions\.json$/m);
  });

  test("the default exchange and queue the permissions are made for are the services' own defaults", () => {
    expect(DEFAULT_AMQP_TOPOLOGY).toEqual({ ordersExchange: ordersConfigSpec.eventsExchange.default, notificationsQueue: notificationsConfigSpec.queue.default });
  });

  test("a consumer without its volume, or a secret emptied by hand, is named", () => {
    const root = volumes();
    rmSync(path.join(root, "rabbitmq"), { recursive: true });
    expect(() => initSecrets(root)).toThrow(/no volume mounted for .*\/rabbitmq:/);
    mkdirSync(path.join(root, "rabbitmq"));
    initSecrets(root);
    const kept = read(root, "postgres/orders-password");
    // An empty file counts as absent and is generated afresh (an interrupted first run).
    rmSync(path.join(root, "consul/orders-token"));
    writeFileSync(path.join(root, "consul/orders-token"), "");
    expect(initSecrets(root).created).toEqual(["consul/orders-token"]);
    expect(read(root, "postgres/orders-password")).toBe(kept);
  });
});
