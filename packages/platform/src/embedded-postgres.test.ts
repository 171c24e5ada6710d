import assert from "node:assert/strict";
import { test } from "vitest";
import { loadEmbeddedPostgres } from "./embedded-postgres.js";

const notInstalled = () => Promise.reject(Object.assign(new Error("Cannot find package '@electric-sql/pglite'"), { code: "ERR_MODULE_NOT_FOUND" }));

test("without PGlite installed (a service image), the error names the setting to set instead", async () => {
  await assert.rejects(loadEmbeddedPostgres("CATALOG_DATABASE_URL", notInstalled), (error: Error) => {
    assert.match(error.message, /^CATALOG_DATABASE_URL is required: this build carries no embedded PostgreSQL/);
    assert.equal((error.cause as NodeJS.ErrnoException).code, "ERR_MODULE_NOT_FOUND");
    return true;
  });
});

test("any other failure to load PGlite is passed on as it is", async () => {
  const broken = new Error("WebAssembly.instantiate(): out of memory");
  await assert.rejects(
    loadEmbeddedPostgres("CATALOG_DATABASE_URL", () => Promise.reject(broken)),
    (error) => error === broken,
  );
});

test("where it is installed (npm start, the tests), PGlite and its knex client load on demand", async () => {
  const modules = await loadEmbeddedPostgres("CATALOG_DATABASE_URL");
  assert.equal(typeof modules.PGlite, "function");
  assert.equal(typeof modules.ClientPgLite, "function");
});
