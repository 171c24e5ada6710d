/**
 * The Kubernetes Secrets are generated (npm run k8s:secrets), never committed:
 * checked on `kubectl kustomize` renders (offline) and on the generator itself.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, test } from "vitest";
import { AMQP_USERS } from "@meshwork/platform/queue/permissions";
import { writeKubernetesSecrets } from "../../scripts/k8s-secrets.js";
import type { KubeObject } from "../graph-checks.js";
import { renderKustomize } from "../kustomize.js";

const root = path.resolve(import.meta.dirname, "../..");
const [first, second] = await Promise.all([renderKustomize(path.join(root, "mesh/linkerd")), renderKustomize(path.join(root, "mesh/linkerd"))]);
const find = (objects: KubeObject[], kind: string, prefix: string) => {
  const found = objects.filter((object) => object.kind === kind && object.metadata.name.startsWith(prefix));
  assert.equal(found.length, 1, `one ${kind} ${prefix}*`);
  return found[0]!;
};
const decoded = (secret: KubeObject): Record<string, string> =>
  Object.fromEntries(Object.entries((secret as unknown as { data: Record<string, string> }).data).map(([key, value]) => [key, Buffer.from(value, "base64").toString("utf8")]));
const podSpecs = (objects: KubeObject[]) =>
  objects.filter((object) => object.kind === "Deployment" || object.kind === "StatefulSet").map((object) => ({ name: object.metadata.name as string, spec: object.spec.template.spec }));

describe("Kubernetes Secrets, generated", () => {
  test("without generated secrets kustomize renders nothing, naming the missing file", async (t) => {
    const copy = await mkdtemp(path.join(tmpdir(), "meshwork-nosecrets-"));
    t.onTestFinished(() => rm(copy, { recursive: true, force: true }));
    await cp(path.join(root, "mesh/linkerd"), copy, { recursive: true });
    await rm(path.join(copy, "base/secrets"), { recursive: true, force: true });
    await assert.rejects(promisify(execFile)("kubectl", ["kustomize", copy]), /secrets\/(database|postgres|rabbitmq|identity)\.env|secrets\/rabbitmq\//);
  });

  test("every service's database URL carries its own random password, different on each generation", () => {
    const [a, b] = [first, second].map((objects) => decoded(find(objects, "Secret", "meshwork-database")));
    for (const service of ["identity", "catalog", "orders", "payments", "notifications"]) {
      const url = new URL(a![service]!);
      assert.equal(url.username, `meshwork_${service}`);
      assert.match(url.password, /^[A-Za-z0-9_-]{43}$/);
      assert.notEqual(url.password, url.username);
      assert.notEqual(a![service], b![service], `${service}'s password is generated afresh, not fixed`);
    }
    assert.equal(new Set(Object.values(a!).map((url) => new URL(url).password)).size, 5);
    const passwords = decoded(find(first, "Secret", "postgres-secrets"));
    assert.equal(passwords["orders-password"], new URL(a!.orders!).password, "PostgreSQL's init script gets the password orders' URL carries");
  });

  test("each Secret is mounted or referenced only by its consumer: postgres-secrets by PostgreSQL, rabbitmq-config by RabbitMQ, a service's URL by that service", () => {
    const secretName = (prefix: string) => find(first, "Secret", prefix).metadata.name;
    for (const { name, spec } of podSpecs(first)) {
      const mounted = (spec.volumes ?? []).filter((volume: any) => volume.secret).map((volume: any) => volume.secret.secretName);
      assert.deepEqual(mounted, name === "postgres" ? [secretName("postgres-secrets")] : name === "rabbitmq" ? [secretName("rabbitmq-config")] : [], `${name} mounts`);
      const refs = spec.containers.flatMap((container: any) => (container.env ?? []).filter((entry: any) => entry.valueFrom?.secretKeyRef).map((entry: any) => entry.valueFrom.secretKeyRef));
      const app = name.replace(/-canary$/, "");
      for (const ref of refs) {
        if (ref.name === secretName("meshwork-database")) assert.equal(ref.key, app, `${name} reads only its own database URL`);
        else if (ref.name === secretName("meshwork-rabbitmq")) assert.equal(ref.key, `${app}-url`, `${name} reads only its own broker URL`);
        else if (ref.name === secretName("meshwork-identity")) assert.equal(app, "identity", `${name} reads identity's key-encryption key`);
        else if (ref.name === secretName("meshwork-orders")) assert.equal(app, "orders", `${name} reads orders' card-token key`);
        else assert.fail(`${name} reads ${ref.name}/${ref.key}`);
      }
      const keyRefs = refs.map((ref: any) => `${ref.name}/${ref.key}`);
      if (app === "identity") assert.ok(keyRefs.includes(`${secretName("meshwork-identity")}/key-encryption-key`), "identity gets its key-encryption key from a Secret");
      if (app === "orders") assert.ok(keyRefs.includes(`${secretName("meshwork-orders")}/card-token-key`), "orders gets its card-token key from a Secret");
      assert.ok(
        !(spec.containers[0].env ?? []).some((entry: any) => entry.name === "POSTGRES_PASSWORD" || entry.name.startsWith("RABBITMQ_DEFAULT")),
        `${name} holds no admin password in its environment`,
      );
    }
  });

  test("RabbitMQ: a user per service with the generated permissions, no guest, and the management UI on the pod's loopback only", () => {
    const config = decoded(find(first, "Secret", "rabbitmq-config"));
    assert.match(config["rabbitmq.conf"]!, /^management\.tcp\.ip = 127\.0\.0\.1$/m);
    const definitions = JSON.parse(config["definitions.json"]!) as { users: { name: string }[] };
    assert.deepEqual(definitions.users.map((user) => user.name).sort(), ["meshwork-admin", AMQP_USERS.notifications, AMQP_USERS.orders].sort());
    const urls = decoded(find(first, "Secret", "meshwork-rabbitmq"));
    assert.equal(decodeURIComponent(new URL(urls["orders-url"]!).username), AMQP_USERS.orders);
    assert.equal(decodeURIComponent(new URL(urls["notifications-url"]!).username), AMQP_USERS.notifications);
    const service = first.find((object) => object.kind === "Service" && object.metadata.name === "rabbitmq")!;
    assert.deepEqual(
      service.spec.ports.map((port: any) => port.port),
      [5672],
    );
    const statefulSet = first.find((object) => object.kind === "StatefulSet" && object.metadata.name === "rabbitmq")!;
    assert.deepEqual(
      statefulSet.spec.template.spec.containers[0].ports.map((port: any) => port.containerPort),
      [5672],
    );
  });

  test("base: RabbitMQ's management port skips the Linkerd proxy, so no proxy forwards other pods' connections to the loopback listener", async () => {
    // In base: the Linkerd component's StatefulSet patch (components/linkerd) replaces the pod annotations today.
    const base = await renderKustomize(path.join(root, "mesh/linkerd/base"));
    const statefulSet = base.find((object) => object.kind === "StatefulSet" && object.metadata.name === "rabbitmq")!;
    assert.equal(statefulSet.spec.template.metadata.annotations["config.linkerd.io/skip-inbound-ports"], "15672");
  });

  test("the generator keeps a complete set, and refuses a partial one naming what is missing", async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), "meshwork-k8s-secrets-"));
    t.onTestFinished(() => rm(dir, { recursive: true, force: true }));
    assert.equal(writeKubernetesSecrets(dir).written, true);
    const before = await readFile(path.join(dir, "database.env"), "utf8");
    assert.equal(writeKubernetesSecrets(dir).written, false);
    assert.equal(await readFile(path.join(dir, "database.env"), "utf8"), before);
    await rm(path.join(dir, "identity.env"));
    assert.throws(() => writeKubernetesSecrets(dir), /holds only part of the secrets \(missing identity\.env\)/);
  });
});
