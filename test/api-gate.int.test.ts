/**
 * The API gate (scripts/lib/api-gate.ts, `npm run api:release` and
 * `npm run breaking`) refuses what would break a v1 client and lets a new
 * version package through, with one override: removing a package after its
 * recorded sunset. Every test works on a scratch copy of proto/, buf.yaml and
 * api/ (the real tree is never modified) and runs the real buf binary.
 */
import assert from "node:assert/strict";
import { cp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import { API_LIFECYCLE, API_RELEASE } from "@meshwork/contracts/api-lifecycle";
import {
  ApiGateError,
  archivedImage,
  checkBreaking,
  DEFAULT_BUF,
  imageFiles,
  LIFECYCLE_MODULE,
  lifecycleModule,
  RELEASE_ARCHIVE,
  RELEASE_LOG,
  RELEASED_IMAGE,
  readReleaseLog,
  releaseApi,
  type BaselineResult,
} from "../scripts/lib/api-gate.js";
import { runProcess, tempDir, type RunResult } from "./support/run-process.js";

const root = path.resolve(import.meta.dirname, "..");
const TIMEOUT = { timeout: 60_000 };
const catalogProto = "proto/shop/catalog/v1/catalog.proto";
const ordersProto = "proto/shop/orders/v1/orders.proto";
/** A date safely after any sunset the tests record, and one before. */
const AFTER_SUNSET = "2027-08-01";
/**
 * The versions the tests release, relative to the repository's last
 * release, so that they hold after the next real one: NEXT follows it,
 * LATER follows NEXT, NEXT_MAJOR is the breaking release of a removal.
 */
const RELEASED = (await readReleaseLog(root)).releases.map((release) => release.version);
const LAST = RELEASED.at(-1)!;
const [MAJOR, MINOR] = LAST.split(".").map(Number) as [number, number];
const minor = (step: number): string => `${MAJOR}.${MINOR + step}.0`;
const NEXT = minor(1);
const LATER = minor(2);
const NEXT_MAJOR = `${MAJOR + 1}.0.0`;
const escaped = (text: string): string => text.replaceAll(".", "\\.");
const BEFORE_SUNSET = "2027-05-01";

const output = (result: RunResult): string => `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;

/** A scratch repository: the contracts, buf.yaml and the released API as committed. */
async function scratchRepo(t: TestScope): Promise<string> {
  const dir = await tempDir(t, "api-gate");
  await cp(path.join(root, "proto"), path.join(dir, "proto"), { recursive: true });
  await cp(path.join(root, "buf.yaml"), path.join(dir, "buf.yaml"));
  await mkdir(path.join(dir, "api"));
  await cp(path.join(root, RELEASED_IMAGE), path.join(dir, RELEASED_IMAGE));
  await cp(path.join(root, RELEASE_LOG), path.join(dir, RELEASE_LOG));
  await cp(path.join(root, RELEASE_ARCHIVE), path.join(dir, RELEASE_ARCHIVE), { recursive: true });
  return dir;
}

/** Replaces exactly one occurrence, so that an edit of the real proto cannot turn a test into a no-op. */
async function editOnce(file: string, from: string, to: string): Promise<void> {
  const text = await readFile(file, "utf8");
  const count = text.split(from).length - 1;
  assert.equal(count, 1, `expected exactly one ${JSON.stringify(from)} in ${file}, found ${count}; update this test to the current proto`);
  await writeFile(file, text.replace(from, to));
}

/** What api/ holds, to prove a refused release wrote nothing. */
const apiState = async (dir: string): Promise<string> => (await readFile(path.join(dir, RELEASED_IMAGE))).toString("base64") + (await readFile(path.join(dir, RELEASE_LOG), "utf8"));

/** Runs a release that must be refused; returns the message and checks that api/ was left alone. */
async function refusedRelease(dir: string, options: Omit<Parameters<typeof releaseApi>[0], "root">): Promise<string> {
  const before = await apiState(dir);
  const error = await releaseApi({ root: dir, ...options }).then(
    () => assert.fail("the release was accepted"),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof ApiGateError, `expected a refusal, got ${String(error)}`);
  assert.equal(await apiState(dir), before, "a refused release changed api/");
  return error.message;
}

const findingTypes = (results: readonly BaselineResult[]): string[] => results.flatMap((result) => result.findings.map((finding) => finding.type)).sort();

const CATALOG_V2 = `syntax = "proto3";

package shop.catalog.v2;

// A product variant, as a v2 would add: a new package beside v1.
message Variant {
  string sku = 1;
  string size = 2;
}
`;

async function addCatalogV2(dir: string): Promise<void> {
  await mkdir(path.join(dir, "proto/shop/catalog/v2"));
  await writeFile(path.join(dir, "proto/shop/catalog/v2/catalog.proto"), CATALOG_V2);
}

/** Releases NEXT announcing shop.catalog.v1's sunset, as the release before its removal would. */
async function announceCatalogV1Sunset(dir: string): Promise<void> {
  await releaseApi({ root: dir, version: NEXT, sunsets: { "shop.catalog.v1": "2027-07-01" }, today: "2027-01-01" });
}

test("the breaking rules (buf.yaml) include every WIRE_JSON rule or a stricter one, so a Connect JSON client is protected as well as the wire", TIMEOUT, async (t) => {
  const cwd = await tempDir(t, "rules");
  await cp(path.join(root, "buf.yaml"), path.join(cwd, "buf.yaml"));
  const list = async (args: string[]): Promise<{ id: string; categories: string[] }[]> => {
    const result = await runProcess(DEFAULT_BUF, ["config", "ls-breaking-rules", "--format", "json", ...args], { cwd, timeoutMs: 30_000 });
    assert.equal(result.code, 0, output(result));
    return result.stdout
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as { id: string; categories: string[] });
  };
  const configured = new Set((await list(["--configured-only"])).map((rule) => rule.id));
  const wireJson = (await list(["--version", "v2"])).filter((rule) => rule.categories.includes("WIRE_JSON")).map((rule) => rule.id);
  assert.ok(wireJson.length > 10, `buf lists only ${wireJson.length} WIRE_JSON rules`);
  // The WIRE_JSON rules that FILE leaves out are weaker forms of FILE rules: "unless reserved" deletions
  // and "compatible" type or cardinality changes are all refused outright by the stricter rule.
  const stricter: Record<string, string> = {
    FIELD_NO_DELETE_UNLESS_NAME_RESERVED: "FIELD_NO_DELETE",
    FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED: "FIELD_NO_DELETE",
    ENUM_VALUE_NO_DELETE_UNLESS_NAME_RESERVED: "ENUM_VALUE_NO_DELETE",
    ENUM_VALUE_NO_DELETE_UNLESS_NUMBER_RESERVED: "ENUM_VALUE_NO_DELETE",
    FIELD_WIRE_JSON_COMPATIBLE_TYPE: "FIELD_SAME_TYPE",
    FIELD_WIRE_JSON_COMPATIBLE_CARDINALITY: "FIELD_SAME_CARDINALITY",
  };
  const uncovered = wireJson.filter((id) => !configured.has(id) && !configured.has(stricter[id] ?? id));
  assert.deepEqual(uncovered, [], "WIRE_JSON rules that buf.yaml's breaking rules do not cover");
  for (const id of ["FIELD_SAME_NAME", "FIELD_SAME_JSON_NAME", "ENUM_VALUE_SAME_NAME", "MESSAGE_SAME_JSON_FORMAT"]) assert.ok(configured.has(id), `${id} is not configured`);
});

test("a release is refused when a v1 field changes type or number, naming the field, and nothing is written", TIMEOUT, async (t) => {
  const dir = await scratchRepo(t);
  await editOnce(path.join(dir, catalogProto), "  int32 stock_available = 5;", "  string stock_available = 5;");
  const typeChanged = await refusedRelease(dir, { version: NEXT });
  assert.match(typeChanged, /FIELD_SAME_TYPE/);
  assert.match(typeChanged, /"stock_available".*from "int32" to "string"/);

  await editOnce(path.join(dir, catalogProto), "  string stock_available = 5;", "  int32 stock_available = 15;");
  const numberChanged = await refusedRelease(dir, { version: NEXT });
  assert.match(numberChanged, /FIELD_NO_DELETE/);
  assert.match(numberChanged, /Previously present field "5" with name "stock_available" on message "Product" was deleted/);
});

test("renaming a v1 field, changing its json_name, or renaming an enum value is refused: Connect JSON would break even where the wire does not", TIMEOUT, async (t) => {
  const dir = await scratchRepo(t);
  await editOnce(path.join(dir, catalogProto), "  int32 stock_available = 5;", "  int32 stock_on_hand = 5;");
  let { results } = await checkBreaking({ root: dir });
  assert.deepEqual(findingTypes(results), ["FIELD_SAME_JSON_NAME", "FIELD_SAME_NAME"]);
  assert.match(await refusedRelease(dir, { version: NEXT }), /changed name from "stock_available" to "stock_on_hand"/);

  // Same name and number (the binary wire is unchanged): only the JSON name differs.
  await editOnce(path.join(dir, catalogProto), "  int32 stock_on_hand = 5;", '  int32 stock_available = 5 [json_name = "stock"];');
  ({ results } = await checkBreaking({ root: dir }));
  assert.deepEqual(findingTypes(results), ["FIELD_SAME_JSON_NAME"]);
  assert.match(await refusedRelease(dir, { version: NEXT }), /json_name.*from "stockAvailable" to "stock"/);

  await editOnce(path.join(dir, catalogProto), '  int32 stock_available = 5 [json_name = "stock"];', "  int32 stock_available = 5;");
  // Connect JSON carries enum values by name.
  await editOnce(path.join(dir, ordersProto), "  ORDER_STATUS_CONFIRMED = 2;", "  ORDER_STATUS_ACCEPTED = 2;");
  ({ results } = await checkBreaking({ root: dir }));
  assert.deepEqual(findingTypes(results), ["ENUM_VALUE_SAME_NAME"]);
});

test("a release is refused when a v1 RPC is removed", TIMEOUT, async (t) => {
  const dir = await scratchRepo(t);
  await editOnce(path.join(dir, catalogProto), "  rpc GetProduct(GetProductRequest) returns (GetProductResponse);\n", "");
  const message = await refusedRelease(dir, { version: NEXT });
  assert.match(message, /RPC_NO_DELETE/);
  assert.match(message, /"GetProduct" on service "CatalogService"/);
});

test("adding shop.catalog.v2 releases: the image gains the package, the release is recorded, and the tag to create is printed", TIMEOUT, async (t) => {
  const dir = await scratchRepo(t);
  await addCatalogV2(dir);
  const outcome = await releaseApi({ root: dir, version: NEXT, today: "2027-01-01" });
  assert.equal(outcome.tagCommand, `git tag api-v${NEXT}`);
  assert.deepEqual(outcome.comparedWith, [RELEASED_IMAGE]);

  const packages = new Set((await imageFiles({ root: dir }, path.join(dir, RELEASED_IMAGE))).filter((file) => !file.isImport).map((file) => file.package));
  assert.ok(packages.has("shop.catalog.v2") && packages.has("shop.catalog.v1"), [...packages].join(", "));
  const log = await readReleaseLog(dir);
  assert.deepEqual(
    log.releases.map((release) => release.version),
    [...RELEASED, NEXT],
  );
  assert.equal(log.releases.at(-1)?.date, "2027-01-01");
  assert.deepEqual(log.releases.at(-1)?.packages["shop.catalog.v2"], {});
  // The release's image is archived beside the others, so a later release can still generate its clients.
  assert.deepEqual(await readFile(path.join(dir, archivedImage(NEXT))), await readFile(path.join(dir, RELEASED_IMAGE)));
  // The dates for the services' Deprecation and Sunset headers are written with the record.
  assert.equal(await readFile(path.join(dir, LIFECYCLE_MODULE), "utf8"), lifecycleModule(log.releases.at(-1)!));
  assert.deepEqual(findingTypes((await checkBreaking({ root: dir })).results), [], "the new baseline does not hold what was released");

  // The version must grow, and must be a version.
  assert.match(await refusedRelease(dir, { version: NEXT }), new RegExp(`must be greater than the last release, ${escaped(NEXT)}`));
  assert.match(await refusedRelease(dir, { version: `${MAJOR}.${MINOR}.99` }), new RegExp(`must be greater than the last release, ${escaped(NEXT)}`));
  assert.match(await refusedRelease(dir, { version: "v1.2" }), /"v1\.2" is not MAJOR\.MINOR\.PATCH/);
});

test("a baseline rebuilt outside a release is refused, and the last release tag catches one whose record was doctored too", TIMEOUT, async (t) => {
  const dir = await scratchRepo(t);
  const git = async (...args: string[]): Promise<void> => {
    const result = await runProcess("git", ["-c", "user.email=gate@example.test", "-c", "user.name=gate", ...args], { cwd: dir, timeoutMs: 30_000 });
    assert.equal(result.code, 0, output(result));
  };
  await git("init", "-q");
  await git("add", "-A");
  await git("commit", "-q", "-m", `release ${LAST}`);
  await git("tag", `api-v${LAST}`);

  // Someone changes a v1 field and rebuilds the baseline by hand to silence the gate.
  await editOnce(path.join(dir, catalogProto), "  int32 stock_available = 5;", "  int64 stock_available = 5;");
  const rebuilt = await runProcess(DEFAULT_BUF, ["build", "proto", "-o", RELEASED_IMAGE], { cwd: dir, timeoutMs: 30_000 });
  assert.equal(rebuilt.code, 0, output(rebuilt));
  await assert.rejects(checkBreaking({ root: dir }), new RegExp(`api/released\\.binpb \\(sha256 [0-9a-f]+\\) is not the image release ${escaped(LAST)} recorded`));

  // ...and doctors the record and the archived copy as well: the committed image agrees, the tag does not.
  await cp(path.join(dir, RELEASED_IMAGE), path.join(dir, archivedImage(LAST)));
  const log = JSON.parse(await readFile(path.join(dir, RELEASE_LOG), "utf8")) as { releases: { sha256: string }[] };
  const { createHash } = await import("node:crypto");
  log.releases.at(-1)!.sha256 = createHash("sha256")
    .update(await readFile(path.join(dir, RELEASED_IMAGE)))
    .digest("hex");
  await writeFile(path.join(dir, RELEASE_LOG), JSON.stringify(log));
  const { results } = await checkBreaking({ root: dir });
  assert.deepEqual(
    results.map((result) => [result.baseline.label, result.findings.map((finding) => finding.type)]),
    [
      [RELEASED_IMAGE, []],
      [`tag api-v${LAST}`, ["FIELD_SAME_TYPE"]],
    ],
  );
  assert.match(await refusedRelease(dir, { version: NEXT }), new RegExp(`changed type from "int32" to "int64".*against tag api-v${escaped(LAST)}`));

  // A version at or below the last tag is refused, even when the record says otherwise.
  await git("tag", `api-v${minor(4)}`);
  assert.match(await refusedRelease(dir, { version: minor(3) }), new RegExp(`greater than the last release tag, api-v${escaped(minor(4))}`));
});

test("every release's image is archived as recorded: a missing or altered archived image is refused, naming the file", TIMEOUT, async (t) => {
  const dir = await scratchRepo(t);
  assert.deepEqual(findingTypes((await checkBreaking({ root: dir })).results), []);
  const first = RELEASED[0]!;
  await writeFile(path.join(dir, archivedImage(first)), Buffer.concat([await readFile(path.join(dir, archivedImage(first))), Buffer.from([0])]));
  await assert.rejects(checkBreaking({ root: dir }), new RegExp(`api/releases/${escaped(first)}\\.binpb \\(sha256 [0-9a-f]+\\) is not the image release ${escaped(first)} recorded`));
  await rm(path.join(dir, archivedImage(first)));
  await assert.rejects(checkBreaking({ root: dir }), new RegExp(`api/releases/${escaped(first)}\\.binpb is missing`));
});

test("removing shop.catalog.v1 after its sunset passes with --remove-sunset, and fails without it or before the sunset", TIMEOUT, async (t) => {
  const dir = await scratchRepo(t);
  await addCatalogV2(dir);
  await announceCatalogV1Sunset(dir);
  assert.deepEqual((await readReleaseLog(dir)).releases.at(-1)?.packages["shop.catalog.v1"], { deprecated: "2027-01-01", sunset: "2027-07-01" });

  await rm(path.join(dir, "proto/shop/catalog/v1"), { recursive: true });
  const without = await refusedRelease(dir, { version: NEXT_MAJOR, today: AFTER_SUNSET });
  assert.match(without, /Previously present file "shop\/catalog\/v1\/catalog\.proto" was deleted/);
  assert.match(without, /--remove-sunset/);
  assert.match(await refusedRelease(dir, { version: NEXT_MAJOR, removeSunset: "shop.catalog.v1", today: BEFORE_SUNSET }), /its sunset is 2027-07-01, not yet passed \(today is 2027-05-01\)/);
  assert.match(await refusedRelease(dir, { version: NEXT_MAJOR, removeSunset: "shop.identity.v1", today: AFTER_SUNSET }), /records no sunset for shop\.identity\.v1/);

  const outcome = await releaseApi({ root: dir, version: NEXT_MAJOR, removeSunset: "shop.catalog.v1", today: AFTER_SUNSET });
  assert.deepEqual(outcome.record.removed, ["shop.catalog.v1"]);
  assert.equal(outcome.record.packages["shop.catalog.v1"], undefined);
  assert.deepEqual(outcome.record.packages["shop.catalog.v2"], {});
  const packages = (await imageFiles({ root: dir }, path.join(dir, RELEASED_IMAGE))).map((file) => file.package);
  assert.ok(!packages.includes("shop.catalog.v1") && packages.includes("shop.catalog.v2"), packages.join(", "));
});

test("--remove-sunset cannot hide another breaking change, nor a package removed only in part", TIMEOUT, async (t) => {
  const dir = await scratchRepo(t);
  await addCatalogV2(dir);
  await announceCatalogV1Sunset(dir);
  await rm(path.join(dir, "proto/shop/catalog/v1"), { recursive: true });
  await editOnce(path.join(dir, ordersProto), "  ORDER_STATUS_CONFIRMED = 2;", "  ORDER_STATUS_ACCEPTED = 2;");
  const hidden = await refusedRelease(dir, { version: NEXT_MAJOR, removeSunset: "shop.catalog.v1", today: AFTER_SUNSET });
  assert.match(hidden, /forgives only the removal of shop\.catalog\.v1; these breaking changes remain/);
  assert.match(hidden, /proto\/shop\/orders\/v1\/orders\.proto:\d+: .*ORDER_STATUS_CONFIRMED.*ENUM_VALUE_SAME_NAME/);
  assert.doesNotMatch(hidden, /catalog\.proto/, "the forgiven deletion was reported as remaining");

  // The override is for a whole package: a file of it left behind (here, a second one added) refuses it.
  await editOnce(path.join(dir, ordersProto), "  ORDER_STATUS_ACCEPTED = 2;", "  ORDER_STATUS_CONFIRMED = 2;");
  await mkdir(path.join(dir, "proto/shop/catalog/v1"));
  await writeFile(path.join(dir, "proto/shop/catalog/v1/left.proto"), 'syntax = "proto3";\n\npackage shop.catalog.v1;\n\nmessage Left {\n  string id = 1;\n}\n');
  assert.match(
    await refusedRelease(dir, { version: NEXT_MAJOR, removeSunset: "shop.catalog.v1", today: AFTER_SUNSET }),
    /removes the whole package, but shop\/catalog\/v1\/left\.proto still declares it/,
  );
});

test("--sunset records a package's deprecation and sunset dates, and refuses a sunset that is not later or a package the release lacks", TIMEOUT, async (t) => {
  const dir = await scratchRepo(t);
  assert.match(await refusedRelease(dir, { version: NEXT, sunsets: { "shop.catalog.v1": "2027-01-01" }, today: "2027-01-01" }), /a sunset must be after the release date, 2027-01-01/);
  assert.match(await refusedRelease(dir, { version: NEXT, sunsets: { "shop.catalog.v9": "2027-07-01" }, today: "2027-01-01" }), /the release has no package shop\.catalog\.v9/);
  assert.match(await refusedRelease(dir, { version: NEXT, sunsets: { "shop.catalog.v1": "2027-02-30" }, today: "2027-01-01" }), /"2027-02-30" is not a date YYYY-MM-DD/);

  await announceCatalogV1Sunset(dir);
  // A later release keeps the dates it was given.
  await releaseApi({ root: dir, version: LATER, today: "2027-02-01" });
  const log = await readReleaseLog(dir);
  assert.deepEqual(log.releases.at(-1)?.packages["shop.catalog.v1"], { deprecated: "2027-01-01", sunset: "2027-07-01" });
  assert.deepEqual(log.releases.at(-1)?.packages["shop.identity.v1"], {});
});

test("the committed lifecycle module (the services' Deprecation and Sunset dates) is the last release's record in api/releases.json", async () => {
  const last = (await readReleaseLog(root)).releases.at(-1)!;
  assert.equal(API_RELEASE, last.version);
  assert.deepEqual(API_LIFECYCLE, last.packages);
  assert.equal(await readFile(path.join(root, LIFECYCLE_MODULE), "utf8"), lifecycleModule(last), `${LIFECYCLE_MODULE} was edited by hand: run npm run api:release`);
});

test("the api:release command refuses a malformed version or --sunset before touching anything, saying what is wrong", TIMEOUT, async () => {
  const before = await apiState(root);
  const cli = (args: string[]): Promise<RunResult> => runProcess(process.execPath, ["--import", "tsx", "scripts/api-release.ts", ...args], { cwd: root, timeoutMs: 30_000 });
  const badVersion = await cli(["1.0"]);
  assert.equal(badVersion.code, 1, output(badVersion));
  assert.match(badVersion.stderr, /api:release refused: version "1\.0" is not MAJOR\.MINOR\.PATCH/);
  const noVersion = await cli([]);
  assert.equal(noVersion.code, 1, output(noVersion));
  assert.match(noVersion.stderr, /expected exactly one version, got none\nusage: npm run api:release -- <version>/);
  const badSunset = await cli(["9.0.0", "--sunset", "shop.catalog.v1"]);
  assert.equal(badSunset.code, 1, output(badSunset));
  assert.match(badSunset.stderr, /--sunset shop\.catalog\.v1: expected <package>=<YYYY-MM-DD>/);
  assert.equal(await apiState(root), before, "a refused release changed the repository's api/");
});

test("npm run breaking's script passes on the repository, comparing with the released image", TIMEOUT, async () => {
  const result = await runProcess(process.execPath, ["--import", "tsx", "scripts/api-breaking.ts"], { cwd: root, timeoutMs: 30_000 });
  assert.equal(result.code, 0, output(result));
  assert.match(result.stdout, /^no breaking change against api\/released\.binpb/);
});
