/**
 * The frozen v1 clients (test/fixtures/frozen-v1/) are exactly what the
 * generators make from the released image that frozen.json names: nobody can
 * "refresh" them from proto/ without this file failing. Needs Debian's protoc
 * and grpc_python_plugin, which CI installs (.ci/run).
 */
import assert from "node:assert/strict";
import { cp, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "vitest";
import { RELEASE_LOG, RELEASED_IMAGE, readReleaseLog, releasedImage } from "../scripts/lib/api-gate.js";
import { FROZEN_DIR, FROZEN_MANIFEST, freezeClients, frozenRelease, generateFrozenClients, sha256Of, type FrozenManifest } from "../scripts/lib/frozen-clients.js";
import { tempDir } from "./support/run-process.js";

const root = path.resolve(import.meta.dirname, "..");

/** Every file under `dir`, as sorted relative paths. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return (
    entries
      // Python's bytecode caches (git ignores them) are not part of the fixture.
      .filter((entry) => entry.isFile() && !entry.parentPath.split(path.sep).includes("__pycache__"))
      .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
      .sort()
  );
}

test("the frozen v1 clients are what protoc-gen-es and protoc generate from the released image frozen.json names, not from proto/", { timeout: 60_000 }, async (t) => {
  const manifest = JSON.parse(await readFile(path.join(root, FROZEN_MANIFEST), "utf8")) as FrozenManifest;
  const recorded = (await readReleaseLog(root)).releases.find((release) => release.version === manifest.release);
  assert.ok(recorded, `frozen.json names release ${manifest.release}, which api/releases.json does not record`);
  assert.equal(recorded.sha256, manifest.imageSha256, `frozen.json's image is not the one release ${manifest.release} recorded`);

  // That release's archived image, checked against its record: a clone without tags has it too.
  const image = await releasedImage(root, await readReleaseLog(root), manifest.release);
  assert.equal(await sha256Of(image), manifest.imageSha256);

  const scratch = await tempDir(t, "frozen-v1");
  await generateFrozenClients(root, image, scratch);
  const problems: string[] = [];
  for (const kind of ["ts", "python"]) {
    const fresh = await listFiles(path.join(scratch, kind));
    const committed = await listFiles(path.join(root, FROZEN_DIR, kind));
    assert.ok(fresh.length > 0, `nothing generated for ${kind}`);
    const missing = fresh.filter((file) => !committed.includes(file));
    const extra = committed.filter((file) => !fresh.includes(file));
    problems.push(...missing.map((file) => `missing ${kind}/${file}`), ...extra.map((file) => `extra ${kind}/${file}`));
    for (const file of fresh.filter((name) => committed.includes(name))) {
      const [now, frozen] = await Promise.all([readFile(path.join(scratch, kind, file)), readFile(path.join(root, FROZEN_DIR, kind, file))]);
      if (!now.equals(frozen)) problems.push(`differs ${kind}/${file}`);
    }
  }
  assert.deepEqual(problems, [], `the frozen clients are not what release ${manifest.release}'s image generates (see ${FROZEN_DIR}/README.md)`);
});

test("api:freeze-clients refuses an image that no release recorded, so the fixtures cannot come from the working tree", { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t, "freeze");
  await mkdir(path.join(dir, "api"));
  await cp(path.join(root, RELEASED_IMAGE), path.join(dir, RELEASED_IMAGE));
  await assert.rejects(freezeClients(dir), /no release is recorded in api\/releases\.json/);

  // An image rebuilt from proto/ after the release is not the recorded one.
  await cp(path.join(root, RELEASE_LOG), path.join(dir, RELEASE_LOG));
  await writeFile(path.join(dir, RELEASED_IMAGE), Buffer.concat([await readFile(path.join(root, RELEASED_IMAGE)), Buffer.from([0])]));
  await assert.rejects(freezeClients(dir), /api\/released\.binpb is not the image release \d+\.\d+\.\d+ recorded/);
  assert.deepEqual(await readdir(dir), ["api"], "a refused freeze wrote fixtures");
});

test("api:freeze-clients freezes the first release with v1 packages, and once frozen.json names a release it keeps that one, not the last", async () => {
  const log = await readReleaseLog(root);
  const manifest = JSON.parse(await readFile(path.join(root, FROZEN_MANIFEST), "utf8")) as FrozenManifest;
  assert.ok(log.releases.length > 1, "this test needs a release after the frozen one");
  const [first] = log.releases;
  assert.equal(frozenRelease(log, undefined).version, first!.version);
  // Later releases (shop.orders.v2 from 1.1.0) are never frozen over the v1 clients.
  assert.equal(frozenRelease(log, manifest).version, manifest.release);
  assert.notEqual(frozenRelease(log, manifest).version, log.releases.at(-1)!.version);

  assert.throws(() => frozenRelease(log, { ...manifest, release: "9.9.9" }), /names release 9\.9\.9, which api\/releases\.json does not record/);
  assert.throws(() => frozenRelease(log, { ...manifest, imageSha256: "0".repeat(64) }), /image is not the one release \d+\.\d+\.\d+ recorded/);
  const withoutV1 = { releases: [{ ...first!, packages: { "shop.orders.v2": {} } }] };
  assert.throws(() => frozenRelease(withoutV1, undefined), /no recorded release ships a shop\.\*\.v1 package/);
});
