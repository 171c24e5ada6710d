/**
 * Interoperability proven, not claimed: the catalog service (started
 * in-process on port 0, embedded PGlite, demo products) is called by clients
 * that share none of its TypeScript code:
 *  (a) grpc-js with @grpc/proto-loader, knowing only the .proto files;
 *  (b) Python (Debian's grpcio), with stubs generated from proto/ by protoc;
 *  (c) buf curl, knowing nothing but what server reflection tells it.
 */
import assert from "node:assert/strict";
import { access, constants } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { createClient } from "@meshwork/platform";
import { needs } from "@meshwork/testing";
import { startCatalog } from "../services/catalog/src/main.js";
import { runProcess, tempDir, type RunResult } from "./support/run-process.js";

const root = path.resolve(import.meta.dirname, "..");
const protoDir = path.join(root, "proto");
const buf = path.join(root, "node_modules", ".bin", "buf");
const pythonClientScript = path.join(import.meta.dirname, "fixtures", "python_catalog_client.py");

const TEST_TIMEOUT_MS = 60_000;
const CALL_TIMEOUT_MS = 10_000;
const PROCESS_TIMEOUT_MS = 30_000;

let catalog: Awaited<ReturnType<typeof startCatalog>> | undefined;

beforeAll(async () => {
  catalog = await startCatalog({ CATALOG_PORT: "0", CATALOG_DATA_DIR: "memory://", CATALOG_LOG_LEVEL: "warn" });
}, TEST_TIMEOUT_MS);

afterAll(async () => {
  await catalog?.shutdown.run("test done");
});

function address(): string {
  assert.ok(catalog, "the catalog did not start");
  return `127.0.0.1:${catalog.port}`;
}

const output = (result: RunResult): string => `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;

// ---------------------------------------------------------------------------
// (a) grpc-js + proto-loader: the .proto files and nothing else

/** A grpc-js client of `serviceName`, defined by loading `file` at run time. */
function protoLoadedClient(t: TestScope, file: string, includeDirs: string[], serviceName: string): grpc.Client {
  const definition = loadSync(file, { includeDirs, longs: String, enums: String, defaults: true });
  let node: unknown = grpc.loadPackageDefinition(definition);
  for (const part of serviceName.split(".")) node = (node as Record<string, unknown> | undefined)?.[part];
  assert.equal(typeof node, "function", `${serviceName} is not a service in ${file}`);
  const Client = node as grpc.ServiceClientConstructor;
  const client = new Client(address(), grpc.credentials.createInsecure(), { "grpc.enable_http_proxy": 0 });
  t.onTestFinished(() => client.close());
  return client;
}

type UnaryMethod = (request: object, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response?: unknown) => void) => grpc.ClientUnaryCall;

/** Calls a unary method of a proto-loaded client by its name, with a deadline. */
function unary(client: grpc.Client, method: string, request: object): Promise<unknown> {
  const fn = (client as unknown as Record<string, unknown>)[method];
  assert.equal(typeof fn, "function", `the client has no method ${method}`);
  return new Promise((resolve, reject) => {
    (fn as UnaryMethod).call(client, request, { deadline: Date.now() + CALL_TIMEOUT_MS }, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

/** A Product as proto-loader decodes it with { longs: String, enums: String, defaults: true }. */
interface LoadedProduct {
  id: string;
  name: string;
  price: { currencyCode: string; amountMinor: string } | null;
  stockAvailable: number;
}

const catalogClient = (t: TestScope): grpc.Client => protoLoadedClient(t, "shop/catalog/v1/catalog.proto", [protoDir], "shop.catalog.v1.CatalogService");

test("a grpc-js client that knows only the .proto files lists products and gets one by id", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const client = catalogClient(t);

  const listed = (await unary(client, "ListProducts", { pageSize: 5 })) as { products: LoadedProduct[]; nextPageToken: string };
  assert.ok(listed.products.length > 0, "ListProducts returned no products");
  for (const product of listed.products) {
    assert.ok(product.name.length > 0, `product ${product.id} has no name`);
    assert.ok(product.price, `product ${product.id} has no price`);
    assert.match(product.price.currencyCode, /^[A-Z]{3}$/);
    assert.match(product.price.amountMinor, /^[1-9]\d*$/, "int64 amount_minor arrives as a decimal string (longs: String)");
  }
  const first = listed.products[0];
  assert.ok(first);

  const got = (await unary(client, "GetProduct", { productId: first.id })) as { product: LoadedProduct | null };
  assert.ok(got.product, "GetProduct returned no product");
  assert.equal(got.product.id, first.id);
  assert.equal(got.product.name, first.name);
  assert.deepEqual(got.product.price, first.price);
});

test("an invalid product id reaches a .proto-loaded client as INVALID_ARGUMENT naming product_id", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const client = catalogClient(t);
  await assert.rejects(unary(client, "GetProduct", { productId: "bad id!" }), (error: grpc.ServiceError) => {
    assert.equal(error.code, grpc.status.INVALID_ARGUMENT, `expected INVALID_ARGUMENT, got ${grpc.status[error.code]}: ${error.details}`);
    assert.match(error.details, /product_id/);
    return true;
  });
});

test("a grpc-js client loaded from grpc-health-check's health.proto sees the server and the catalog SERVING", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const health = protoLoadedClient(t, healthProtoPath, [], "grpc.health.v1.Health");
  assert.deepEqual(await unary(health, "Check", { service: "" }), { status: "SERVING" });
  assert.deepEqual(await unary(health, "Check", { service: "shop.catalog.v1.CatalogService" }), { status: "SERVING" });
  await assert.rejects(unary(health, "Check", { service: "shop.nothing.v1.NoService" }), { code: grpc.status.NOT_FOUND });
});

// ---------------------------------------------------------------------------
// (b) Python: stubs generated from proto/ by protoc + grpc_python_plugin

/** Debian's interpreter: the `python3` on PATH may be a pyenv build without grpcio. */
const PYTHON = "/usr/bin/python3";
const PROTOC = "/usr/bin/protoc";
const GRPC_PYTHON_PLUGIN = "/usr/bin/grpc_python_plugin";
/** Where Debian's libprotobuf-dev puts the well-known types (google/protobuf/timestamp.proto). */
const WKT_INCLUDE_DIRS = ["/usr/include", "/usr/local/include"];

const exists = (file: string, mode = constants.R_OK): Promise<boolean> =>
  access(file, mode).then(
    () => true,
    () => false,
  );

type Toolchain = { missing: string } | { missing: undefined; wktInclude: string };

async function pythonToolchain(cwd: string): Promise<Toolchain> {
  for (const [file, pkg] of [
    [PYTHON, "python3"],
    [PROTOC, "protobuf-compiler"],
    [GRPC_PYTHON_PLUGIN, "protobuf-compiler-grpc"],
  ] as const) {
    if (!(await exists(file, constants.X_OK))) return { missing: `${file} not found; install Debian's ${pkg}` };
  }
  let wktInclude: string | undefined;
  for (const dir of WKT_INCLUDE_DIRS) {
    if (await exists(path.join(dir, "google", "protobuf", "timestamp.proto"))) {
      wktInclude = dir;
      break;
    }
  }
  if (wktInclude === undefined) {
    return { missing: `google/protobuf/timestamp.proto not found in ${WKT_INCLUDE_DIRS.join(" or ")}; install Debian's libprotobuf-dev` };
  }
  const modules = await runProcess(PYTHON, ["-I", "-c", "import grpc, google.protobuf"], { cwd, timeoutMs: PROCESS_TIMEOUT_MS });
  if (modules.code !== 0) {
    return { missing: `${PYTHON} cannot import grpc and google.protobuf; install python3-grpcio and python3-protobuf (${modules.stderr.trim()})` };
  }
  return { missing: undefined, wktInclude };
}

interface PythonProduct {
  id: string;
  name: string;
  currency_code: string;
  amount_minor: string;
  stock_available: number;
  update_time: { seconds: string; nanos: number };
}

interface PythonClientOutput {
  list: { products: PythonProduct[]; next_page_token: string };
  get: PythonProduct;
  invalid: { code: string; details: string };
}

/**
 * Generates Python stubs from proto/ into a temporary directory and runs the
 * fixture client against the catalog. Undefined when the test was skipped
 * because the toolchain is missing (a failure in CI).
 */
async function runPythonClient(t: TestScope): Promise<PythonClientOutput | undefined> {
  const stubs = await tempDir(t, "python-stubs");
  const toolchain = await pythonToolchain(stubs);
  if (!needs(t, "Python gRPC toolchain", toolchain.missing) || toolchain.missing !== undefined) return undefined;

  const generated = await runProcess(
    PROTOC,
    [
      `--proto_path=${protoDir}`,
      `--proto_path=${toolchain.wktInclude}`,
      `--python_out=${stubs}`,
      `--grpc_python_out=${stubs}`,
      `--plugin=protoc-gen-grpc_python=${GRPC_PYTHON_PLUGIN}`,
      "shop/common/v1/money.proto",
      "shop/catalog/v1/catalog.proto",
    ],
    { cwd: root, timeoutMs: PROCESS_TIMEOUT_MS },
  );
  assert.equal(generated.code, 0, `protoc failed:\n${output(generated)}`);
  assert.ok(await exists(path.join(stubs, "shop", "catalog", "v1", "catalog_pb2_grpc.py")), "protoc wrote no gRPC stubs");

  // -I: isolated mode, so no PYTHONPATH, user site-packages or current directory leaks in.
  const run = await runProcess(PYTHON, ["-I", pythonClientScript, stubs, address()], { cwd: stubs, timeoutMs: PROCESS_TIMEOUT_MS });
  assert.equal(run.code, 0, `the Python client failed:\n${output(run)}`);
  return JSON.parse(run.stdout) as PythonClientOutput;
}

test("a Python client generated from proto/ sees the same products as the TypeScript client", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const python = await runPythonClient(t);
  if (!python) return;

  const { client, close } = createClient(CatalogService, { target: address() });
  t.onTestFinished(close);
  const listed = await client.listProducts({ pageSize: 100 });
  const expected = listed.products.map(
    (product): PythonProduct => ({
      id: product.id,
      name: product.name,
      currency_code: product.price?.currencyCode ?? "",
      amount_minor: String(product.price?.amountMinor ?? 0n),
      stock_available: product.stockAvailable,
      update_time: { seconds: String(product.updateTime?.seconds ?? 0n), nanos: product.updateTime?.nanos ?? 0 },
    }),
  );

  assert.ok(expected.length > 0, "the TypeScript client listed no products");
  assert.deepEqual(python.list.products, expected);
  assert.equal(python.list.next_page_token, listed.nextPageToken);
  assert.deepEqual(python.get, expected[0], "GetProduct from Python returned another product than the first listed");
});

test("a Python client generated from proto/ receives INVALID_ARGUMENT naming product_id for an invalid id", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const python = await runPythonClient(t);
  if (!python) return;
  assert.equal(python.invalid.code, "INVALID_ARGUMENT");
  assert.match(python.invalid.details, /product_id/);
});

// ---------------------------------------------------------------------------
// (c) buf curl: no .proto files at all, only server reflection

/** buf curl in an empty directory, so that it cannot find the buf module and must use reflection. */
async function bufCurl(t: TestScope, args: string[]): Promise<RunResult> {
  const cwd = await tempDir(t, "buf-curl");
  return runProcess(buf, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], { cwd, timeoutMs: PROCESS_TIMEOUT_MS });
}

test("buf curl lists the catalog and health methods through server reflection alone", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const result = await bufCurl(t, ["--list-methods", `http://${address()}`]);
  assert.equal(result.code, 0, `buf curl failed:\n${output(result)}`);
  const methods = result.stdout.split("\n").filter((line) => line !== "");
  for (const method of ["shop.catalog.v1.CatalogService/ListProducts", "shop.catalog.v1.CatalogService/GetProduct", "grpc.health.v1.Health/Check"]) {
    assert.ok(methods.includes(method), `${method} is not listed:\n${result.stdout}`);
  }
});

test("buf curl calls GetProduct with a schema learnt from reflection, imports included", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const { client, close } = createClient(CatalogService, { target: address() });
  t.onTestFinished(close);
  const first = (await client.listProducts({ pageSize: 1 })).products[0];
  assert.ok(first, "the catalog has no products");

  const result = await bufCurl(t, ["-d", JSON.stringify({ productId: first.id }), `http://${address()}/shop.catalog.v1.CatalogService/GetProduct`]);
  assert.equal(result.code, 0, `buf curl failed:\n${output(result)}`);
  const got = JSON.parse(result.stdout) as { product?: { id?: string; name?: string; price?: { amountMinor?: string }; updateTime?: string } };
  assert.equal(got.product?.id, first.id);
  assert.equal(got.product?.name, first.name);
  // Money (shop/common/v1) and Timestamp (a well-known type) decode only if reflection served the dependencies too.
  assert.equal(got.product?.price?.amountMinor, String(first.price?.amountMinor));
  assert.match(got.product?.updateTime ?? "", /^\d{4}-\d{2}-\d{2}T/);
});
