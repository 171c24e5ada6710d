import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { describeConfig } from "@meshwork/platform";
import { catalogConfigSpec } from "../src/config.js";

test("the README's catalog settings table is the one the code defines", async () => {
  const readme = await readFile(path.resolve(import.meta.dirname, "../../../README.md"), "utf8");
  const match = /<!-- catalog-config:start -->\n([\s\S]*?)\n<!-- catalog-config:end -->/.exec(readme);
  assert.ok(match, "README.md has the catalog-config markers");
  assert.equal(match[1], describeConfig(catalogConfigSpec), "regenerate the table with describeConfig(catalogConfigSpec)");
});
