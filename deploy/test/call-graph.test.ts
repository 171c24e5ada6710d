import assert from "node:assert/strict";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, test } from "vitest";
import { APP_SERVICES, CALL_GRAPH, edgeKeys, type AppService, type CallEdge } from "../call-graph.js";
import { parseCompose } from "../compose-schema.js";
import {
  declaredMethodGrants,
  edgesFromLinkerd,
  edgesFromSource,
  methodGrantsFromLinkerd,
  pairsFromComposeDependencies,
  pairsFromComposeNetworks,
  type FoundEdge,
  type SourceFile,
} from "../graph-checks.js";
import { renderKustomize } from "../kustomize.js";

const root = path.resolve(import.meta.dirname, "../..");

function sourcesOf(service: AppService): SourceFile[] {
  const dir = path.join(root, "services", service, "src");
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".ts") && !file.endsWith(".test.ts"))
    .map((file) => ({ path: `services/${service}/src/${file}`, text: readFileSync(path.join(dir, file), "utf8") }));
}
const edgesFromAllSources = (override: (service: AppService, files: SourceFile[]) => SourceFile[] = (_, files) => files): FoundEdge[] =>
  APP_SERVICES.flatMap((service) => edgesFromSource(service, override(service, sourcesOf(service))));
const pairs = (graph: readonly CallEdge[]) => [...new Set(graph.map((edge) => `${edge.caller}->${edge.callee}`))].sort();
/** The declared graph with one edge taken out, as someone deleting a caller would leave it. */
const without = (caller: AppService, callee: AppService) => CALL_GRAPH.filter((edge) => !(edge.caller === caller && edge.callee === callee));

const composeText = readFileSync(path.join(root, "compose.yaml"), "utf8");

describe("one call graph: the code, compose and Linkerd agree with deploy/call-graph.ts", () => {
  test("the clients each service builds in its source are exactly its declared callees, with the declared scope", () => {
    assert.deepEqual(edgeKeys(edgesFromAllSources()), edgeKeys(CALL_GRAPH));
  });

  test("the methods each service's code calls (clients' method calls, services the gateway forwards whole) are exactly its edges' methods", () => {
    assert.deepEqual(declaredMethodGrants(edgesFromAllSources()), declaredMethodGrants(CALL_GRAPH));
  });

  test("the rendered Linkerd routes and policies let each caller call exactly its declared methods, and Health", async () => {
    const objects = await renderKustomize(path.join(root, "mesh/linkerd"));
    assert.deepEqual(methodGrantsFromLinkerd(objects), declaredMethodGrants(CALL_GRAPH));
  });

  test("a call to one more method in code is found: orders listing products", () => {
    const edited = edgesFromAllSources((service, files) =>
      service !== "orders" ? files : [...files, { path: "services/orders/src/extra.ts", text: "await clients.catalog.client.listProducts({});" }],
    );
    assert.deepEqual(
      declaredMethodGrants(edited).filter((key) => !declaredMethodGrants(CALL_GRAPH).includes(key)),
      ["orders->catalog shop.catalog.v1.CatalogService/ListProducts"],
    );
  });

  test("compose networks let each service reach exactly its declared callees", () => {
    assert.deepEqual(pairsFromComposeNetworks(parseCompose(composeText)), pairs(CALL_GRAPH));
  });

  test("compose starts each service after exactly its declared callees (depends_on)", () => {
    assert.deepEqual(pairsFromComposeDependencies(parseCompose(composeText)), pairs(CALL_GRAPH));
  });

  test("the rendered Linkerd policy authorizes exactly the declared callers, each for its declared scope", async () => {
    const objects = await renderKustomize(path.join(root, "mesh/linkerd"));
    assert.deepEqual(edgeKeys(edgesFromLinkerd(objects)), edgeKeys(CALL_GRAPH));
  });

  test("removing a caller from the graph fails every check: the code, compose and Linkerd still have it", async () => {
    const graph = without("orders", "payments");
    assert.notDeepEqual(edgeKeys(edgesFromAllSources()), edgeKeys(graph));
    assert.notDeepEqual(pairsFromComposeNetworks(parseCompose(composeText)), pairs(graph));
    assert.notDeepEqual(pairsFromComposeDependencies(parseCompose(composeText)), pairs(graph));
    const objects = await renderKustomize(path.join(root, "mesh/linkerd"));
    assert.notDeepEqual(edgeKeys(edgesFromLinkerd(objects)), edgeKeys(graph));
    // And the difference is exactly that edge.
    assert.deepEqual(
      edgeKeys(edgesFromAllSources()).filter((key) => !edgeKeys(graph).includes(key)),
      ["orders->payments:api"],
    );
  });

  test("a client call added in code without a graph edge is found: notifications building a catalog client", () => {
    const edited = edgesFromAllSources((service, files) =>
      service !== "notifications"
        ? files
        : files.map((file) =>
            file.path.endsWith("/main.ts")
              ? {
                  ...file,
                  text: `import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";\n${file.text.replace(
                    "const identity = createClient(",
                    'const catalog = createClient(CatalogService, { target: discovery.resolver.watch("catalog") });\n      const identity = createClient(',
                  )}`,
                }
              : file,
          ),
    );
    const extra = edgeKeys(edited).filter((key) => !edgeKeys(CALL_GRAPH).includes(key));
    assert.deepEqual(extra, ["notifications->catalog:api"]);
  });

  test("a new address setting alone (a health-only connection) is found too: orders gaining ORDERS_NOTIFICATIONS_ADDR", () => {
    const edited = edgesFromAllSources((service, files) =>
      service !== "orders" ? files : [...files, { path: "services/orders/src/extra.ts", text: 'parseAddressList("ORDERS_NOTIFICATIONS_ADDR", value);' }],
    );
    assert.deepEqual(
      edgeKeys(edited).filter((key) => !edgeKeys(CALL_GRAPH).includes(key)),
      ["orders->notifications:health"],
    );
  });

  test("a source naming a service the graph does not know is refused with the file named", () => {
    assert.throws(
      () => edgesFromSource("orders", [{ path: "services/orders/src/x.ts", text: 'resolver.watch("inventory")' }]),
      /services\/orders\/src\/x\.ts: discovery watch: "inventory" is not one of/,
    );
  });

  test("a compose copy where the gateway leaves the payments network, or a shared network joins two services, disagrees", () => {
    const compose = parseCompose(composeText);
    compose.services.gateway.networks = compose.services.gateway.networks.filter((network: string) => network !== "payments");
    assert.deepEqual(
      pairs(CALL_GRAPH).filter((pair) => !pairsFromComposeNetworks(compose).includes(pair)),
      ["gateway->payments"],
    );
    const shared = parseCompose(composeText);
    shared.services.catalog.networks = [...shared.services.catalog.networks, "backend"];
    shared.services.payments.networks = [...shared.services.payments.networks, "backend"];
    assert.throws(() => pairsFromComposeNetworks(shared), /network backend is named after no service yet joins catalog, payments/);
  });

  test("a copy of the manifests with a caller removed from a MeshTLSAuthentication renders, and fails the check", async (t) => {
    const copy = await mkdtemp(path.join(tmpdir(), "meshwork-linkerd-"));
    t.onTestFinished(() => rm(copy, { recursive: true, force: true }));
    await cp(path.join(root, "mesh/linkerd"), copy, { recursive: true });
    const policy = path.join(copy, "components/linkerd/policy/payments.yaml");
    const text = await readFile(policy, "utf8");
    // payments-api-callers: orders is its only entry; hand the API to the gateway instead.
    const edited = text.replace(/(name: payments-api-callers[\s\S]*?identityRefs:\n\s+- kind: ServiceAccount\n\s+name: )orders/, "$1gateway");
    assert.notEqual(edited, text);
    await writeFile(policy, edited);
    const found = edgeKeys(edgesFromLinkerd(await renderKustomize(copy)));
    assert.ok(!found.includes("orders->payments:api"), "orders lost its API access");
    assert.ok(found.includes("gateway->payments:api"), "the gateway gained API access");
    assert.notDeepEqual(found, edgeKeys(CALL_GRAPH));
  });
});
