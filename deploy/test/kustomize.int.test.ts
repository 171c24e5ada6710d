import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, test } from "vitest";
import * as gatewayApi from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1";
import * as apps from "kubernetes-models/apps/v1";
import * as core from "kubernetes-models/v1";
import { settingsOf } from "./config-specs.js";
import { APP_SERVICES, CALL_GRAPH, SERVED_APIS, SERVICE_PORTS, type AppService } from "../call-graph.js";
import { dataClientsFromLinkerd, routeServices, type KubeObject } from "../graph-checks.js";
import { renderKustomize } from "../kustomize.js";
import { createLinkerdValidator, isLinkerdKind } from "../linkerd-schemas.js";

const root = path.resolve(import.meta.dirname, "../..");
const objects = await renderKustomize(path.join(root, "mesh/linkerd"));
const byKind = (kind: string) => objects.filter((object) => object.kind === kind);
const named = (kind: string, name: string) => {
  const found = objects.find((object) => object.kind === kind && object.metadata.name === name);
  assert.ok(found, `${kind} ${name} exists`);
  return found;
};
const BACKENDS = APP_SERVICES.filter((service): service is Exclude<AppService, "gateway"> => service !== "gateway");
const appDeployments = () => byKind("Deployment").filter((deployment) => (APP_SERVICES as readonly string[]).includes(deployment.metadata.labels?.app ?? ""));
const containerOf = (deployment: KubeObject) => deployment.spec.template.spec.containers[0];
const envOf = (deployment: KubeObject): Record<string, any> => Object.fromEntries(containerOf(deployment).env.map((entry: any) => [entry.name, entry.value ?? entry.valueFrom]));

const CORE_MODELS: Record<string, new (data: any) => { validate(): void }> = {
  "v1/Namespace": core.Namespace,
  "v1/ServiceAccount": core.ServiceAccount,
  "v1/Service": core.Service,
  "v1/ConfigMap": core.ConfigMap,
  "v1/Secret": core.Secret,
  "apps/v1/Deployment": apps.Deployment,
  "apps/v1/StatefulSet": apps.StatefulSet,
};

describe("kubectl kustomize mesh/linkerd", () => {
  test("renders the namespace, the data stores, every service and the Linkerd policy, all in the meshwork namespace", () => {
    const kinds = new Set(objects.map((object) => object.kind));
    for (const kind of ["Namespace", "Deployment", "StatefulSet", "Service", "ServiceAccount", "Server", "GRPCRoute", "AuthorizationPolicy", "MeshTLSAuthentication", "NetworkAuthentication"]) {
      assert.ok(kinds.has(kind), `renders a ${kind}`);
    }
    for (const object of objects.filter((candidate) => candidate.kind !== "Namespace")) {
      assert.equal(object.metadata.namespace, "meshwork", `${object.kind} ${object.metadata.name} is namespaced`);
    }
    for (const service of APP_SERVICES) named("Deployment", service);
  });

  test("every Kubernetes core object validates against the Kubernetes schemas (kubernetes-models)", () => {
    for (const object of objects.filter((candidate) => !candidate.apiVersion.includes("linkerd.io") && !candidate.apiVersion.startsWith("gateway.networking.k8s.io"))) {
      const Model = CORE_MODELS[`${object.apiVersion}/${object.kind}`];
      assert.ok(Model, `a model for ${object.apiVersion} ${object.kind}`);
      // kustomize folds long base64 values over lines; the API server's decoder
      // skips the newlines, the model's "byte" format does not.
      const data = object.kind === "Secret" ? { data: Object.fromEntries(Object.entries((object as any).data ?? {}).map(([key, value]) => [key, String(value).replace(/\s+/g, "")])) } : {};
      assert.doesNotThrow(() => new Model({ ...object, ...data }).validate(), `${object.kind} ${object.metadata.name}`);
    }
  });

  test("kubernetes-models refuses a Deployment whose probe port is not a port", () => {
    const broken = structuredClone(named("Deployment", "orders")) as any;
    broken.spec.template.spec.containers[0].readinessProbe.grpc.port = "grpc";
    assert.throws(() => new apps.Deployment(broken).validate(), /port/);
  });

  test("every Gateway API object validates against the Gateway API schemas (@kubernetes-models/gateway-api)", () => {
    const routes = byKind("GRPCRoute");
    assert.ok(routes.length > 0);
    for (const route of routes) {
      assert.equal(route.apiVersion, "gateway.networking.k8s.io/v1");
      assert.doesNotThrow(() => new gatewayApi.GRPCRoute(route as any).validate(), `GRPCRoute ${route.metadata.name}`);
    }
  });

  test("every Linkerd object has the structure of its CRD", () => {
    const validate = createLinkerdValidator();
    const linkerd = objects.filter((object) => object.apiVersion.includes("linkerd.io"));
    assert.ok(linkerd.length > 0);
    for (const object of linkerd) {
      assert.ok(isLinkerdKind(object.kind), `${object.kind} is a known Linkerd kind`);
      assert.deepEqual(validate(object), []);
    }
  });

  test("the Linkerd check refuses a misspelt field, an unknown protocol, an empty network list and an older Server version", () => {
    const validate = createLinkerdValidator();
    const server = structuredClone(named("Server", "catalog-grpc")) as any;
    assert.ok(validate({ ...server, spec: { ...server.spec, proxyProtocol: "grpc" } }).some((problem) => problem.includes("proxyProtocol")));
    assert.ok(validate({ ...server, spec: { ...server.spec, podSelecter: server.spec.podSelector } }).length > 0);
    assert.ok(validate({ ...server, apiVersion: "policy.linkerd.io/v1beta1" }).some((problem) => problem.includes("apiVersion")));
    const network = structuredClone(named("NetworkAuthentication", "kubelet-probes")) as any;
    assert.ok(validate({ ...network, spec: { networks: [] } }).length > 0);
    assert.ok(validate({ ...network, spec: { networks: [{ cidr: "10.0.0.0/33" }] } }).length > 0);
  });

  test("every reference resolves: policy targets, authentications, route parents and backends, Server ports", () => {
    for (const policy of byKind("AuthorizationPolicy")) {
      named(policy.spec.targetRef.kind, policy.spec.targetRef.name);
      for (const ref of policy.spec.requiredAuthenticationRefs) named(ref.kind, ref.name);
    }
    for (const authentication of byKind("MeshTLSAuthentication")) {
      for (const ref of authentication.spec.identityRefs) named("ServiceAccount", ref.name);
    }
    for (const route of byKind("GRPCRoute")) {
      for (const parent of route.spec.parentRefs) named(parent.kind, parent.name);
      for (const rule of route.spec.rules) {
        for (const backend of rule.backendRefs ?? []) {
          const service = named("Service", backend.name);
          assert.ok(
            service.spec.ports.some((port: any) => port.port === backend.port),
            `Service ${backend.name} has port ${backend.port}`,
          );
        }
      }
    }
    const workloads = [...byKind("Deployment"), ...byKind("StatefulSet")];
    for (const server of byKind("Server")) {
      const selected = workloads.filter((workload) => Object.entries(server.spec.podSelector.matchLabels).every(([key, value]) => workload.spec.template.metadata.labels[key] === value));
      assert.ok(selected.length > 0, `Server ${server.metadata.name} selects pods`);
      // A numbered Server (RabbitMQ's management port, which the pod does not
      // declare) needs no named port; a named one must name a declared port.
      if (typeof server.spec.port === "number") continue;
      for (const workload of selected) {
        assert.ok(
          containerOf(workload).ports.some((port: any) => port.name === server.spec.port),
          `${workload.metadata.name} has a port named ${server.spec.port}`,
        );
      }
    }
  });

  test("each service runs as its own ServiceAccount, non-root with a read-only root, no capabilities, limits, gRPC health probes and a preStop delay", () => {
    for (const deployment of appDeployments()) {
      const app = deployment.metadata.labels!.app as AppService;
      const pod = deployment.spec.template.spec;
      const container = containerOf(deployment);
      const name = deployment.metadata.name;
      assert.equal(pod.serviceAccountName, app, `${name}'s ServiceAccount`);
      named("ServiceAccount", app);
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.equal(pod.securityContext.seccompProfile.type, "RuntimeDefault");
      assert.equal(container.securityContext.allowPrivilegeEscalation, false);
      assert.equal(container.securityContext.readOnlyRootFilesystem, true);
      assert.deepEqual(container.securityContext.capabilities.drop, ["ALL"]);
      assert.match(container.image, /^meshwork\/[a-z]+:\d+\.\d+\.\d+$/, `${name}'s image is pinned`);
      assert.ok(container.resources.requests.cpu && container.resources.requests.memory && container.resources.limits.memory, `${name} has resources`);
      for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
        assert.equal(container[probe]?.grpc?.port, SERVICE_PORTS[app].grpc, `${name}'s ${probe} uses gRPC health on its port`);
      }
      assert.ok(container.lifecycle.preStop, `${name} waits before stopping, so endpoints drain`);
      assert.ok(pod.terminationGracePeriodSeconds >= 5 + 10 + 5, `${name}'s grace covers the preStop delay and the drain`);
    }
  });

  test("the data stores' images are pinned to exact versions and run non-root", () => {
    for (const workload of byKind("StatefulSet")) {
      const container = containerOf(workload);
      assert.match(container.image, /^[a-z0-9./-]+:\d+\.\d+(\.\d+)?(-[a-z0-9-]+)?$/, `${workload.metadata.name}'s image is pinned`);
      assert.equal(workload.spec.template.spec.securityContext.runAsNonRoot, true);
      assert.equal(container.securityContext.allowPrivilegeEscalation, false);
    }
  });

  test("each backend's Service carries gRPC as h2c, and its pods' gRPC port is a Linkerd Server with proxyProtocol gRPC", () => {
    for (const service of BACKENDS) {
      const port = named("Service", service).spec.ports.find((candidate: any) => candidate.name === "grpc");
      assert.equal(port.appProtocol, "kubernetes.io/h2c");
      assert.equal(port.port, SERVICE_PORTS[service].grpc);
      const server = named("Server", `${service}-grpc`);
      assert.equal(server.spec.proxyProtocol, "gRPC");
      assert.deepEqual(server.spec.podSelector.matchLabels, { app: service });
    }
    // The edge speaks HTTP/1.1 and h2c on one port: the proxy detects which.
    assert.equal(named("Server", "gateway-http").spec.proxyProtocol, "unknown");
  });

  test("the namespace is injected and admits only authenticated meshed clients by default", () => {
    const annotations = named("Namespace", "meshwork").metadata as any;
    assert.equal(annotations.annotations["linkerd.io/inject"], "enabled");
    assert.equal(annotations.annotations["config.linkerd.io/default-inbound-policy"], "all-authenticated");
  });

  test("each backend's policy routes match only its own services, and kubelet probes are authorized on the health route only", () => {
    for (const service of BACKENDS) {
      const routes = byKind("GRPCRoute").filter((route) => route.spec.parentRefs.some((ref: any) => ref.kind === "Server" && ref.name === `${service}-grpc`));
      const matched = new Set(routes.filter((route) => route.metadata.name !== `${service}-health`).flatMap(routeServices));
      assert.deepEqual(
        [...matched].filter((name) => !SERVED_APIS[service].includes(name)),
        [],
        `${service}'s routes match only what it serves`,
      );
      assert.deepEqual(routeServices(named("GRPCRoute", `${service}-health`)), ["grpc.health.v1.Health"]);
      const probes = named("AuthorizationPolicy", `${service}-probes`);
      assert.equal(probes.spec.targetRef.name, `${service}-health`);
      assert.deepEqual(
        probes.spec.requiredAuthenticationRefs.map((ref: any) => `${ref.kind}/${ref.name}`),
        ["NetworkAuthentication/kubelet-probes"],
      );
    }
    // Unauthenticated access anywhere else would undo zero trust: only health routes, the edge and the metrics ports.
    for (const policy of byKind("AuthorizationPolicy")) {
      const networks = policy.spec.requiredAuthenticationRefs.filter((ref: any) => ref.kind === "NetworkAuthentication").map((ref: any) => ref.name);
      if (networks.length === 0) continue;
      const target = policy.spec.targetRef;
      const allowed =
        (target.kind === "GRPCRoute" &&
          routeServices(named("GRPCRoute", target.name)).every((name) => name === "grpc.health.v1.Health") &&
          networks.every((name: string) => name === "kubelet-probes")) ||
        (target.kind === "Server" && target.name === "gateway-http") ||
        (target.kind === "Server" && named("Server", target.name).spec.port === "metrics" && networks.every((name: string) => name === "metrics-scrapers"));
      assert.ok(allowed, `AuthorizationPolicy ${policy.metadata.name} admits unauthenticated networks to ${target.kind} ${target.name}`);
    }
  });

  test("catalog's outbound routes split by weight between Services selecting the stable and canary pods, and the README says how to promote and roll back", () => {
    for (const name of ["catalog-reads", "catalog-default"]) {
      const route = named("GRPCRoute", name);
      assert.deepEqual(
        route.spec.parentRefs.map((ref: any) => `${ref.kind}/${ref.name}:${ref.port}`),
        ["Service/catalog:50052"],
      );
      // Every rule carries the split: a rule without it would send its methods to both tracks by pod count.
      for (const rule of route.spec.rules) {
        const backends = rule.backendRefs as { name: string; weight: number }[];
        assert.deepEqual(backends.map((backend) => `${backend.name}=${backend.weight}`).sort(), ["catalog-canary=10", "catalog-stable=90"], `${name}'s split`);
      }
    }
    assert.equal(named("Service", "catalog-stable").spec.selector.track, "stable");
    assert.equal(named("Service", "catalog-canary").spec.selector.track, "canary");
    assert.equal(named("Deployment", "catalog-canary").spec.template.metadata.labels.track, "canary");
    const readme = readFileSync(path.join(root, "mesh/linkerd/README.md"), "utf8");
    assert.match(readme, /## Canary: promote and roll back/);
    assert.match(readme, /for route in catalog-reads catalog-default; do kubectl -n meshwork patch grpcroute "\$route"/);
  });

  test("each Deployment addresses exactly its callees' Services, and sets only variables the service reads", () => {
    for (const deployment of appDeployments()) {
      const app = deployment.metadata.labels!.app as AppService;
      const env = envOf(deployment);
      const addresses = Object.entries(env)
        .filter(([key]) => key.endsWith("_ADDR"))
        .map(([key, value]) => `${key}=${value}`)
        .sort();
      const callees = [...new Set(CALL_GRAPH.filter((edge) => edge.caller === app).map((edge) => edge.callee))];
      assert.deepEqual(addresses, callees.map((callee) => `${app.toUpperCase()}_${callee.toUpperCase()}_ADDR=${callee}:${SERVICE_PORTS[callee].grpc}`).sort());
      const known = settingsOf(app);
      assert.deepEqual(
        Object.keys(env).filter((key) => !known.has(key)),
        [],
        `${deployment.metadata.name} sets variables its config does not define`,
      );
      assert.equal(env[`${app.toUpperCase()}_HOST`], "0.0.0.0");
    }
  });

  test("PostgreSQL admits exactly the services with a database, RabbitMQ exactly those with an AMQP URL", () => {
    const withVariable = (suffix: string) =>
      [
        ...new Set(
          appDeployments()
            .filter((deployment) => Object.keys(envOf(deployment)).some((key) => key.endsWith(suffix)))
            .map((deployment) => deployment.metadata.labels!.app!),
        ),
      ].sort();
    assert.deepEqual(dataClientsFromLinkerd(objects), { postgres: withVariable("_DATABASE_URL"), rabbitmq: withVariable("_AMQP_URL") });
  });
});
