/**
 * The deployment's secrets, generated, never committed: one random value per
 * credential, and the files each consumer reads, for compose (the `secrets`
 * one-shot service, scripts/secrets-init.ts) and for Kubernetes (`npm run
 * k8s:secrets`, scripts/k8s-secrets.ts). One module, so both deployments
 * give the same consumers the same files with the same meaning.
 *
 * Who gets what (each consumer mounts only its own set, read-only, at
 * SECRETS_MOUNT):
 *   postgres       superuser-password, <service>-password per database role
 *                  (the init script mesh/linkerd/base/data/postgres-init.sh
 *                  creates the roles with them)
 *   rabbitmq       admin-password (the management UI's user), <service>-password
 *                  per broker user, rabbitmq.conf and definitions.json (users,
 *                  permissions from queue/permissions.ts, the orders exchange)
 *   consul         management-token, <service>-token for every service (the
 *                  ACL bootstrap creates the tokens with these secret ids)
 *   <service>      consul-token; database-url with its own password;
 *                  amqp-url (orders, notifications); key-encryption-key (identity);
 *                  card-token-key (orders: seals card tokens at rest)
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { AMQP_USERS, amqpPermissions, type AmqpPermissionTopology, type AmqpService } from "@meshwork/platform/queue/permissions";

/** Where every consumer finds its own secret files. */
export const SECRETS_MOUNT = "/run/secrets/meshwork";

export const DATABASE_SERVICES = ["identity", "catalog", "orders", "payments", "notifications"] as const;
export type DatabaseService = (typeof DATABASE_SERVICES)[number];
export const AMQP_SERVICES = ["orders", "notifications"] as const satisfies readonly AmqpService[];
export const APPS = ["gateway", ...DATABASE_SERVICES] as const;
export type App = (typeof APPS)[number];
/** Every consumer of secrets: one compose volume (secrets-<name>) each. */
export const SECRET_CONSUMERS = ["postgres", "rabbitmq", "consul", ...APPS] as const;
export type SecretConsumer = (typeof SECRET_CONSUMERS)[number];

/** The exchange and queue the services use by default (services/orders and services/notifications config; deploy/test/secrets.test.ts keeps them equal). */
export const DEFAULT_AMQP_TOPOLOGY: AmqpPermissionTopology = { ordersExchange: "shop.orders.v1", notificationsQueue: "notifications.order-events" };
export const RABBITMQ_ADMIN = "meshwork-admin";
export const POSTGRES_SUPERUSER = "postgres";

/** The random values; everything else is derived from them. */
export interface Secrets {
  readonly postgresSuperuser: string;
  readonly database: Readonly<Record<DatabaseService, string>>;
  readonly rabbitmqAdmin: string;
  readonly amqp: Readonly<Record<AmqpService, string>>;
  readonly consulManagement: string;
  readonly consul: Readonly<Record<App, string>>;
  /** identity's key-encryption key: 32 random bytes, base64url. */
  readonly identityKeyEncryptionKey: string;
  /** orders' key for card tokens at rest (AES-256-GCM): 32 random bytes, base64url; every replica needs the same. */
  readonly ordersCardTokenKey: string;
}

/**
 * 32 random bytes as base64url: 256 bits, and only URL-safe characters, so a
 * password goes into a postgres:// or amqp:// URL and an env file unescaped.
 */
export const newPassword = (): string => randomBytes(32).toString("base64url");
/** Consul accepts only UUIDs as token secret ids; a v4 UUID carries 122 random bits. */
export const newToken = (): string => randomUUID();

const each = <K extends string, V>(keys: readonly K[], value: (key: K) => V): Record<K, V> => Object.fromEntries(keys.map((key) => [key, value(key)])) as Record<K, V>;

export function generateSecrets(): Secrets {
  return {
    postgresSuperuser: newPassword(),
    database: each(DATABASE_SERVICES, newPassword),
    rabbitmqAdmin: newPassword(),
    amqp: each(AMQP_SERVICES, newPassword),
    consulManagement: newToken(),
    consul: each(APPS, newToken),
    identityKeyEncryptionKey: newPassword(),
    ordersCardTokenKey: newPassword(),
  };
}

/** The canonical file of each random value: read back on later runs, so secrets are created once. */
export interface RawSecretFile {
  readonly consumer: SecretConsumer;
  readonly file: string;
  /** Generates the value when the file does not exist yet. */
  readonly generate: () => string;
}

export const RAW_SECRET_FILES: readonly RawSecretFile[] = [
  { consumer: "postgres", file: "superuser-password", generate: newPassword },
  ...DATABASE_SERVICES.map((service) => ({ consumer: "postgres" as const, file: `${service}-password`, generate: newPassword })),
  { consumer: "rabbitmq", file: "admin-password", generate: newPassword },
  ...AMQP_SERVICES.map((service) => ({ consumer: "rabbitmq" as const, file: `${service}-password`, generate: newPassword })),
  { consumer: "consul", file: "management-token", generate: newToken },
  ...APPS.map((app) => ({ consumer: "consul" as const, file: `${app}-token`, generate: newToken })),
  { consumer: "identity", file: "key-encryption-key", generate: newPassword },
  { consumer: "orders", file: "card-token-key", generate: newPassword },
];

/** Secrets from the raw files' values, keyed `<consumer>/<file>`; names the first one missing. */
export function secretsFromRaw(raw: ReadonlyMap<string, string>): Secrets {
  const get = (consumer: SecretConsumer, file: string): string => {
    const value = raw.get(`${consumer}/${file}`);
    if (value === undefined || value === "") throw new Error(`secret ${consumer}/${file} is missing or empty`);
    return value;
  };
  return {
    postgresSuperuser: get("postgres", "superuser-password"),
    database: each(DATABASE_SERVICES, (service) => get("postgres", `${service}-password`)),
    rabbitmqAdmin: get("rabbitmq", "admin-password"),
    amqp: each(AMQP_SERVICES, (service) => get("rabbitmq", `${service}-password`)),
    consulManagement: get("consul", "management-token"),
    consul: each(APPS, (app) => get("consul", `${app}-token`)),
    identityKeyEncryptionKey: get("identity", "key-encryption-key"),
    ordersCardTokenKey: get("orders", "card-token-key"),
  };
}

export const databaseRole = (service: DatabaseService): string => `meshwork_${service}`;

export function databaseUrl(service: DatabaseService, password: string, host = "postgres:5432"): string {
  const role = databaseRole(service);
  return `postgres://${role}:${encodeURIComponent(password)}@${host}/${role}`;
}

export function amqpUrl(service: AmqpService, password: string, host = "rabbitmq:5672"): string {
  return `amqp://${AMQP_USERS[service]}:${encodeURIComponent(password)}@${host}`;
}

/**
 * RabbitMQ's own salted SHA-256 password hash (rabbit_password_hashing_sha256):
 * base64(salt ‖ sha256(salt ‖ password)) with a 4-byte salt, so the
 * definitions file holds no password in clear.
 */
export function rabbitPasswordHash(password: string, salt = randomBytes(4)): string {
  const digest = createHash("sha256")
    .update(Buffer.concat([salt, Buffer.from(password, "utf8")]))
    .digest();
  return Buffer.concat([salt, digest]).toString("base64");
}

/**
 * The broker's definitions, imported at every boot: the admin (management UI
 * only: services never get its password), one user per service with the
 * permissions of queue/permissions.ts, and the orders exchange, declared by
 * the broker so that notifications may bind to it without the right to
 * declare it. With definitions loaded at boot RabbitMQ creates no default
 * `guest` user.
 */
export function rabbitmqDefinitions(secrets: Secrets, topology: AmqpPermissionTopology = DEFAULT_AMQP_TOPOLOGY): object {
  const permissions = amqpPermissions(topology);
  const user = (name: string, password: string, tags: string) => ({ name, password_hash: rabbitPasswordHash(password), hashing_algorithm: "rabbit_password_hashing_sha256", tags });
  return {
    users: [user(RABBITMQ_ADMIN, secrets.rabbitmqAdmin, "administrator"), ...AMQP_SERVICES.map((service) => user(AMQP_USERS[service], secrets.amqp[service], ""))],
    vhosts: [{ name: "/" }],
    permissions: [
      { user: RABBITMQ_ADMIN, vhost: "/", configure: ".*", write: ".*", read: ".*" },
      ...AMQP_SERVICES.map((service) => ({ user: AMQP_USERS[service], vhost: "/", ...permissions[service] })),
    ],
    exchanges: [{ name: topology.ordersExchange, vhost: "/", type: "topic", durable: true, auto_delete: false, internal: false, arguments: {} }],
  };
}

/**
 * rabbitmq.conf lines: load the definitions at boot; the management listener
 * on `managementIp` (0.0.0.0 in compose, where only 127.0.0.1 of the host is
 * published; 127.0.0.1 in Kubernetes, reached by `kubectl port-forward` alone).
 */
export function rabbitmqConf(definitionsPath: string, managementIp: string): string {
  return [`load_definitions = ${definitionsPath}`, `management.tcp.ip = ${managementIp}`, "management.tcp.port = 15672", ""].join("\n");
}

/** Every file of every consumer, raw and derived, for compose's volumes. */
export function composeSecretFiles(secrets: Secrets): Record<SecretConsumer, Record<string, string>> {
  const files = each(SECRET_CONSUMERS, (): Record<string, string> => ({}));
  files.postgres["superuser-password"] = secrets.postgresSuperuser;
  for (const service of DATABASE_SERVICES) {
    files.postgres[`${service}-password`] = secrets.database[service];
    files[service]["database-url"] = databaseUrl(service, secrets.database[service]);
  }
  files.rabbitmq["admin-password"] = secrets.rabbitmqAdmin;
  for (const service of AMQP_SERVICES) {
    files.rabbitmq[`${service}-password`] = secrets.amqp[service];
    files[service]["amqp-url"] = amqpUrl(service, secrets.amqp[service]);
  }
  files.rabbitmq["definitions.json"] = `${JSON.stringify(rabbitmqDefinitions(secrets), null, 2)}\n`;
  files.rabbitmq["rabbitmq.conf"] = rabbitmqConf(`${SECRETS_MOUNT}/definitions.json`, "0.0.0.0");
  files.consul["management-token"] = secrets.consulManagement;
  for (const app of APPS) {
    files.consul[`${app}-token`] = secrets.consul[app];
    files[app]["consul-token"] = secrets.consul[app];
  }
  files.identity["key-encryption-key"] = secrets.identityKeyEncryptionKey;
  files.orders["card-token-key"] = secrets.ordersCardTokenKey;
  return files;
}

/**
 * The files `npm run k8s:secrets` writes into mesh/linkerd/base/secrets/
 * (gitignored), as the kustomization's secretGenerator reads them:
 *   database.env        Secret meshwork-database: <service>=its database URL
 *   postgres.env        Secret postgres-secrets, mounted into PostgreSQL only:
 *                       superuser-password, <service>-password (postgres-init.sh)
 *   rabbitmq.env        Secret meshwork-rabbitmq: <service>-url, admin-password
 *   rabbitmq/*          Secret rabbitmq-config, mounted into RabbitMQ only:
 *                       rabbitmq.conf, definitions.json
 *   identity.env        Secret meshwork-identity: key-encryption-key
 *   orders.env          Secret meshwork-orders: card-token-key
 * Values are base64url or UUIDs and URLs of them: nothing an env file must quote.
 */
export function kubernetesSecretFiles(secrets: Secrets): Record<string, string> {
  const env = (entries: readonly (readonly [string, string])[]) => `${entries.map(([key, value]) => `${key}=${value}`).join("\n")}\n`;
  return {
    "database.env": env(DATABASE_SERVICES.map((service) => [service, databaseUrl(service, secrets.database[service])])),
    "postgres.env": env([["superuser-password", secrets.postgresSuperuser], ...DATABASE_SERVICES.map((service) => [`${service}-password`, secrets.database[service]] as const)]),
    "rabbitmq.env": env([...AMQP_SERVICES.map((service) => [`${service}-url`, amqpUrl(service, secrets.amqp[service])] as const), ["admin-password", secrets.rabbitmqAdmin]]),
    "rabbitmq/definitions.json": `${JSON.stringify(rabbitmqDefinitions(secrets), null, 2)}\n`,
    "rabbitmq/rabbitmq.conf": rabbitmqConf(`${SECRETS_MOUNT}/definitions.json`, "127.0.0.1"),
    "identity.env": env([["key-encryption-key", secrets.identityKeyEncryptionKey]]),
    "orders.env": env([["card-token-key", secrets.ordersCardTokenKey]]),
  };
}
