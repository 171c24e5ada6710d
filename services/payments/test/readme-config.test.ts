import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { describeConfig } from "@meshwork/platform";
import { paymentsConfigSpec } from "../src/config.js";

test("the payments README's settings table is the one the code defines", async () => {
  const readme = await readFile(path.resolve(import.meta.dirname, "../README.md"), "utf8");
  const match = /<!-- payments-config:start -->\n([\s\S]*?)\n<!-- payments-config:end -->/.exec(readme);
  assert.ok(match, "services/payments/README.md has the payments-config markers");
  assert.equal(match[1], describeConfig(paymentsConfigSpec), "regenerate the table with describeConfig(paymentsConfigSpec)");
});
