import assert from "node:assert/strict";
import { test } from "vitest";
import { createSilentLogger } from "./logger.js";
import { createShutdown } from "./shutdown.js";

test("shutdown runs steps last-in first-out, once, and goes on past a failing step", async () => {
  const shutdown = createShutdown(createSilentLogger());
  const ran: string[] = [];
  shutdown.add("close database", async () => void ran.push("database"));
  shutdown.add("drain", async () => {
    ran.push("drain");
    throw new Error("drain failed");
  });
  shutdown.add("NOT_SERVING", async () => void ran.push("not serving"));
  const [first, second] = await Promise.all([shutdown.run("test"), shutdown.run("again")]);
  assert.deepEqual(ran, ["not serving", "drain", "database"]);
  assert.equal(first, false);
  assert.equal(second, false);
});
