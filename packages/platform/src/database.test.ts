import assert from "node:assert/strict";
import { test } from "vitest";
import { sameNames } from "./database.js";
import { databaseSuite } from "./database.suite.js";

databaseSuite("PGlite (embedded)");

test("sameNames: the applied migrations are the known ones, each once, in any order", () => {
  assert.equal(sameNames(["0002_b", "0001_a"], ["0001_a", "0002_b"]), true);
  assert.equal(sameNames(["0001_a"], ["0001_a", "0002_b"]), false, "one still to apply");
  assert.equal(sameNames(["0001_a", "0003_gone"], ["0001_a"]), false, "one the code no longer knows: the migrator reports it");
  assert.equal(sameNames(["0001_a", "0001_a"], ["0001_a", "0002_b"]), false);
  assert.equal(sameNames([], []), true);
});
