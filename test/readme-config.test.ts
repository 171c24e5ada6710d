import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "vitest";
import { describeConfig } from "@meshwork/platform";
import { CONFIG_SPECS, readmeOf, tableIn } from "../scripts/docs-config.js";

for (const [service, spec] of Object.entries(CONFIG_SPECS)) {
  test(`the ${service} README's settings table is the one its config.ts defines`, async () => {
    const table = tableIn(await readFile(readmeOf(service), "utf8"), service);
    assert.ok(table !== undefined, `services/${service}/README.md has the ${service}-config markers`);
    assert.equal(table, describeConfig(spec), "run `npm run docs:config` to rewrite it");
  });
}
