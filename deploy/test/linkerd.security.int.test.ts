/**
 * Security review of the Linkerd manifests (issue 13, points 7 and 9), on the
 * objects `kubectl kustomize mesh/linkerd` renders. Nothing here runs a
 * cluster: each test encodes how Linkerd treats what is rendered, from its
 * CRDs and documentation (see mesh/linkerd/README.md).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, test } from "vitest";
import { APP_SERVICES, CALL_GRAPH, READ_METHODS, SERVED_APIS, SERVICE_PORTS, type AppService } from "../call-graph.js";
import { declaredMethodGrants, methodGrantsFromLinkerd, type KubeObject } from "../graph-checks.js";
import { expandMethods, HEALTH_SERVICE, REFLECTION_SERVICE } from "../grpc-methods.js";
import { renderKustomize } from "../kustomize.js";
import { createLinkerdValidator, MESH_API_VERSIONS, MESH_REQUIREMENTS } from "../linkerd-schemas.js";
import { cidrsOverlap, isIpv6Cidr, retryProblems } from "../mesh-checks.js";

const root = path.resolve(import.meta.dirname, "../..");
const objects = await renderKustomize(path.join(root, "mesh/linkerd"));
const readme = readFileSync(path.join(root, "mesh/linkerd/README.md"), "utf8");
const named = (kind: string, name: string, from: readonly KubeObject[] = objects): any => {
  const found = from.find((object) => object.kind === kind && object.metadata.name === name);
  assert.ok(found, `${kind} ${name} exists`);
  return found;
};
const byKind = (kind: string) => objects.filter((object) => object.kind === kind);
const BACKENDS = APP_SERVICES.filter((service): service is Exclude<AppService, "gateway"> => service !== "gateway");
const backendRoutes = (service: Exclude<AppService, "gateway">) => ({ service, port: SERVICE_PORTS[service].grpc, served: SERVED_APIS[service], reads: READ_METHODS[service] });
const grants = methodGrantsFromLinkerd(objects);
const grantsOf = (caller: AppService, callee: AppService, from = grants) => from.filter((key) => key.startsWith(`${caller}->${callee} `)).map((key) => key.split(" ")[1]!);
/** The MeshTLSAuthentication behind a policy route, with one more ServiceAccount: what a careless edit would do. */
function withCaller(route: string, caller: AppService): KubeObject[] {
  const copy = structuredClone(objects) as any[];
  named("MeshTLSAuthentication", `${route}-callers`, copy).spec.identityRefs.push({ kind: "ServiceAccount", name: caller });
  return copy;
}
const appPods = () => byKind("Deployment").filter((deployment) => (APP_SERVICES as readonly string[]).includes(deployment.metadata.labels?.app ?? ""));

describe("point 7: Linkerd authorizes each caller per gRPC method, as its code calls", () => {
  test("the gateway may call catalog's CatalogService and nothing of its internal StockService", () => {
    assert.deepEqual(
      grantsOf("gateway", "catalog").filter((method) => !method.startsWith("grpc.health.v1.")),
      expandMethods(["shop.catalog.v1.CatalogService"]),
    );
    assert.ok(!grants.some((key) => key.includes("shop.catalog.v1.StockService") && !key.startsWith("orders->")), "only orders reaches StockService");
  });

  test("granting the gateway StockService (one more name in catalog-stock-callers) fails the method check", () => {
    const widened = methodGrantsFromLinkerd(withCaller("catalog-stock", "gateway"));
    assert.deepEqual(
      widened.filter((key) => !declaredMethodGrants(CALL_GRAPH).includes(key)),
      ["gateway->catalog shop.catalog.v1.StockService/ReleaseStock", "gateway->catalog shop.catalog.v1.StockService/ReserveStock"],
    );
  });

  test("orders and notifications may call only GetJwks on identity, never SignIn or SignUp", () => {
    for (const caller of ["orders", "notifications"] as const) {
      assert.deepEqual(grantsOf(caller, "identity"), expandMethods([HEALTH_SERVICE, "shop.identity.v1.IdentityService/GetJwks"]));
    }
    assert.deepEqual(
      methodGrantsFromLinkerd(withCaller("identity-accounts", "orders")).filter((key) => !grants.includes(key)),
      ["orders->identity shop.identity.v1.IdentityService/SignIn", "orders->identity shop.identity.v1.IdentityService/SignUp"],
    );
  });

  test("the gateway, which only health-checks payments, may call nothing else there", () => {
    assert.deepEqual(grantsOf("gateway", "payments"), expandMethods([HEALTH_SERVICE]));
  });

  test("a policy route matching everything (a rule without matches) is refused rather than read as harmless", () => {
    const copy = structuredClone(objects) as any[];
    named("GRPCRoute", "catalog-browse", copy).spec.rules = [{}];
    assert.throws(() => methodGrantsFromLinkerd(copy), /catalog-browse: a policy route must match named services or methods/);
  });

  test("two policy routes matching one method as closely are refused: Linkerd would pick by creation time", () => {
    const copy = structuredClone(objects) as any[];
    named("GRPCRoute", "catalog-browse", copy).spec.rules[0].matches.push({ method: { type: "Exact", service: "shop.catalog.v1.CatalogService", method: "GetProduct" } });
    assert.throws(() => methodGrantsFromLinkerd(copy), /GRPCRoutes catalog-browse and catalog-products .*GetProduct/);
  });

  test("server reflection: no policy route matches it, so no meshed caller reaches it, as deploy/call-graph.ts says", () => {
    assert.deepEqual(
      grants.filter((key) => key.includes(REFLECTION_SERVICE)),
      [],
    );
    for (const route of byKind("GRPCRoute").filter((candidate) => candidate.spec.parentRefs.some((ref: any) => ref.kind === "Server"))) {
      for (const rule of route.spec.rules) for (const match of rule.matches) assert.notEqual(match.method.service, REFLECTION_SERVICE, `GRPCRoute ${route.metadata.name}`);
    }
    assert.match(readFileSync(path.join(root, "deploy/call-graph.ts"), "utf8"), /Server reflection is never reachable inside the mesh/);
    assert.match(readme, /## Server reflection\n\nRefused inside the mesh/);
  });
});

describe("point 9: the mesh as Linkerd really behaves", () => {
  test("every policy and route object has the apiVersion Linkerd 2.18+ and Gateway API 1.1.1-1.2.1 serve, and the README says which versions", () => {
    const meshObjects = objects.filter((object) => object.apiVersion.includes("linkerd.io") || object.apiVersion.startsWith("gateway.networking.k8s.io"));
    assert.ok(meshObjects.length > 0);
    for (const object of meshObjects) assert.equal(object.apiVersion, MESH_API_VERSIONS[object.kind], `${object.kind} ${object.metadata.name}`);
    assert.match(readme, new RegExp(`Linkerd ${MESH_REQUIREMENTS.linkerd.replace(".", "\\.")} or later`));
    assert.match(readme, new RegExp(`Gateway API CRDs ${MESH_REQUIREMENTS.gatewayApi.from.replaceAll(".", "\\.")} to ${MESH_REQUIREMENTS.gatewayApi.to.replaceAll(".", "\\.")}`));
  });

  test("each backend has one catch-all outbound route carrying its retry settings, and no Service carries retry or timeout annotations", () => {
    for (const service of BACKENDS) {
      const route = named("GRPCRoute", `${service}-default`);
      assert.deepEqual(
        route.spec.parentRefs.map((ref: any) => `${ref.kind}/${ref.name}:${ref.port}`),
        [`Service/${service}:${SERVICE_PORTS[service].grpc}`],
      );
      assert.ok(
        route.spec.rules.every((rule: any) => rule.matches === undefined),
        `${service}-default matches every call`,
      );
      assert.equal(route.metadata.annotations["retry.linkerd.io/grpc"], "unavailable");
      assert.equal(route.metadata.annotations["retry.linkerd.io/limit"], "1");
      const annotations = Object.keys(named("Service", service).metadata.annotations ?? {});
      assert.deepEqual(
        annotations.filter((key) => key.startsWith("retry.linkerd.io/") || key.startsWith("timeout.linkerd.io/")),
        [],
        `Service ${service}`,
      );
    }
  });

  test("only reads are re-sent after a timeout; writes and streams are retried on UNAVAILABLE at most, and streams get no request timeout", () => {
    for (const service of BACKENDS) assert.deepEqual(retryProblems(objects, backendRoutes(service)), [], service);
    // The reads routes do carry the retry timeout: the check above is not passing for want of one.
    assert.equal(named("GRPCRoute", "catalog-reads").metadata.annotations["retry.linkerd.io/timeout"], "2s");
  });

  test("a retry timeout on a write route, a deadline-exceeded retry, or a write moved onto a reads route each fail the retry check", () => {
    const timeoutOnWrites = structuredClone(objects) as any[];
    named("GRPCRoute", "payments-default", timeoutOnWrites).metadata.annotations["retry.linkerd.io/timeout"] = "2s";
    assert.ok(retryProblems(timeoutOnWrites, backendRoutes("payments")).some((problem) => problem.includes("AuthorizePayment, which is not a read, after retry.linkerd.io/timeout")));
    const deadline = structuredClone(objects) as any[];
    named("GRPCRoute", "orders-default", deadline).metadata.annotations["retry.linkerd.io/grpc"] = "unavailable,deadline-exceeded";
    assert.ok(retryProblems(deadline, backendRoutes("orders")).some((problem) => problem.includes("PlaceOrder, which is not a read, on deadline-exceeded")));
    const moved = structuredClone(objects) as any[];
    named("GRPCRoute", "catalog-reads", moved).spec.rules[0].matches.push({ method: { type: "Exact", service: "shop.catalog.v1.StockService", method: "ReserveStock" } });
    assert.ok(retryProblems(moved, backendRoutes("catalog")).some((problem) => problem.includes("ReserveStock, which is not a read")));
  });

  test("every read is a unary method its service serves", () => {
    for (const service of BACKENDS) {
      assert.deepEqual(
        expandMethods(READ_METHODS[service]).filter((method) => !expandMethods(SERVED_APIS[service]).includes(method)),
        [],
      );
    }
  });

  test("every app pod's proxy waits for the service's preStop and drain before it stops taking calls, inside the grace period", () => {
    const pods = appPods();
    assert.ok(pods.length >= APP_SERVICES.length);
    for (const deployment of pods) {
      const pod = deployment.spec.template;
      const name = deployment.metadata.name;
      const annotations = pod.metadata.annotations ?? {};
      const container = pod.spec.containers[0];
      const wait = Number(annotations["config.alpha.linkerd.io/proxy-wait-before-exit-seconds"]);
      // Linkerd documents the two as exclusive: with native sidecars the proxy stops last by ordering.
      assert.equal(annotations["config.beta.linkerd.io/proxy-enable-native-sidecar"], undefined, name);
      const preStop = Number(container.lifecycle.preStop.exec.command.at(-1));
      const graceEnv = container.env.find((entry: any) => entry.name.endsWith("_SHUTDOWN_GRACE_MS"));
      const drain = Number(graceEnv?.value ?? 10_000) / 1000;
      assert.ok(wait >= preStop + drain, `${name}: the proxy waits ${wait} s, the service needs ${preStop} s + ${drain} s`);
      assert.ok(wait < pod.spec.terminationGracePeriodSeconds, `${name}: the wait ends before the kubelet kills the pod`);
    }
  });

  test("kubelet probes are admitted from the node networks only: no pod network, IPv6 included, on health routes only", () => {
    const networks = named("NetworkAuthentication", "kubelet-probes").spec.networks.map((network: any) => network.cidr as string);
    // Pod networks of common clusters (kind/flannel, k3s, Calico's default, carrier-grade NAT ranges used for pods).
    const podNetworks = ["10.244.0.0/16", "10.42.0.0/16", "192.168.0.0/16", "100.64.0.0/10", named("NetworkAuthentication", "metrics-scrapers").spec.networks[0].cidr];
    for (const cidr of networks) {
      for (const pods of podNetworks) assert.ok(!cidrsOverlap(cidr, pods), `${cidr} overlaps the pod network ${pods}`);
    }
    assert.ok(networks.some(isIpv6Cidr), "an IPv6 node network is listed");
    const users = byKind("AuthorizationPolicy").filter((policy) => policy.spec.requiredAuthenticationRefs.some((ref: any) => ref.name === "kubelet-probes"));
    assert.deepEqual(users.map((policy) => policy.metadata.name).sort(), BACKENDS.map((service) => `${service}-probes`).sort());
    const file = readFileSync(path.join(root, "mesh/linkerd/components/linkerd/cluster-networks.yaml"), "utf8");
    assert.match(file, /THE ONE PLACE TO SET YOUR CLUSTER'S NETWORKS/);
    assert.match(readme, /## Cluster networks/);
  });

  test("each service's metrics port is a Server only the Prometheus scrapers' network may call", () => {
    for (const service of APP_SERVICES) {
      const server = named("Server", `${service}-metrics`);
      assert.equal(server.spec.port, "metrics");
      assert.deepEqual(server.spec.podSelector.matchLabels, { app: service });
      const policies = byKind("AuthorizationPolicy").filter((policy) => policy.spec.targetRef.kind === "Server" && policy.spec.targetRef.name === `${service}-metrics`);
      assert.deepEqual(
        policies.flatMap((policy) => policy.spec.requiredAuthenticationRefs.map((ref: any) => `${ref.kind}/${ref.name}`)),
        ["NetworkAuthentication/metrics-scrapers"],
      );
    }
    // Every declared port of every app pod is covered by a Server, so the namespace default decides none.
    for (const deployment of appPods()) {
      const app = deployment.metadata.labels!.app;
      for (const port of deployment.spec.template.spec.containers[0].ports) {
        assert.ok(
          byKind("Server").some((server) => server.spec.podSelector.matchLabels?.app === app && server.spec.port === port.name),
          `${deployment.metadata.name}'s port ${port.name}`,
        );
      }
    }
  });

  test("RabbitMQ's management port admits no one through the mesh; AMQP admits only orders and notifications", () => {
    const management = named("Server", "rabbitmq-management");
    assert.equal(management.spec.port, 15672);
    assert.equal(management.spec.accessPolicy, "deny");
    // A misspelt access policy would not be "deny": the CRD schema refuses it.
    assert.ok(createLinkerdValidator()({ ...management, spec: { ...management.spec, accessPolicy: "denied" } }).some((problem) => problem.includes("accessPolicy")));
    assert.deepEqual(
      byKind("AuthorizationPolicy").filter((policy) => policy.spec.targetRef.name === "rabbitmq-management"),
      [],
    );
    const statefulSet = named("StatefulSet", "rabbitmq");
    const rabbitmq = statefulSet.spec.template.spec.containers[0];
    assert.ok(!rabbitmq.ports.some((port: any) => port.containerPort === 15672), "the management port is not declared: it listens on loopback");
    assert.ok(!named("Service", "rabbitmq").spec.ports.some((port: any) => port.port === 15672 || port.targetPort === 15672), "nor on the Service");
    const annotations = statefulSet.spec.template.metadata.annotations;
    assert.equal(annotations["config.linkerd.io/skip-inbound-ports"], "15672", "the proxy does not forward 15672 to the loopback listener");
    assert.equal(annotations["config.linkerd.io/opaque-ports"], "5672");
    for (const port of rabbitmq.ports) {
      assert.ok(
        byKind("Server").some((server) => server.spec.podSelector.matchLabels?.app === "rabbitmq" && server.spec.port === port.name),
        `RabbitMQ's port ${port.name} is covered by a Server`,
      );
    }
    const amqp = byKind("AuthorizationPolicy").filter((policy) => policy.spec.targetRef.name === "rabbitmq-amqp");
    const identities = amqp.flatMap((policy) => policy.spec.requiredAuthenticationRefs.flatMap((ref: any) => named(ref.kind, ref.name).spec.identityRefs.map((identity: any) => identity.name)));
    assert.deepEqual(identities.sort(), ["notifications", "orders"]);
  });
});
