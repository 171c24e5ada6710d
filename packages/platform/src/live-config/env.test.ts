import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import assert from "node:assert/strict";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { createEnvLiveConfig, liveConfigEnvName } from "./env.js";
import type { LiveValue } from "./ports.js";
import { createLogCapture, type LogEntry } from "@meshwork/testing";

const TEST_TIMEOUT = { timeout: 10_000 };
const KEY = "payments/decline-rate";
const ENV_NAME = "MESHWORK_LIVE_PAYMENTS_DECLINE_RATE";
const rate = z.number().min(0).max(1);

function nextChange<T>(live: LiveValue<T>): Promise<{ value: T; previous: T }> {
  return new Promise((resolve) => {
    const off = live.onChange((value, previous) => {
      off();
      resolve({ value, previous });
    });
  });
}

/** Replaces the file in one step, as editors and ConfigMap updates do. */
async function replaceFile(file: string, content: unknown): Promise<void> {
  const temporary = `${file}.${process.hrtime.bigint()}.tmp`;
  await writeFile(temporary, typeof content === "string" ? content : JSON.stringify(content));
  await rename(temporary, file);
}

async function tempFile(t: TestScope, content?: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "meshwork-live-config-"));
  t.onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, "live.json");
  if (content !== undefined) await writeFile(file, JSON.stringify(content));
  return file;
}

const isWarnAbout = (key: string) => (entry: LogEntry) => entry.level === "warn" && entry.key === key;

describe("live config from the environment and a JSON file", () => {
  test("a key maps to an upper-case MESHWORK_LIVE_ variable", () => {
    assert.equal(liveConfigEnvName("payments/decline-rate"), ENV_NAME);
    assert.equal(liveConfigEnvName("checkout.max-items"), "MESHWORK_LIVE_CHECKOUT_MAX_ITEMS");
  });

  test("an env value is parsed as JSON and validated", async () => {
    const { log } = createLogCapture();
    const config = createEnvLiveConfig({ env: { [ENV_NAME]: "0.1" }, log });
    const declineRate = config.value(KEY, rate, 0.05);
    await config.ready();
    assert.equal(declineRate.get(), 0.1);
    config.close();
  });

  test("an env value that is not JSON is taken as a string", () => {
    const { log } = createLogCapture();
    const config = createEnvLiveConfig({ env: { MESHWORK_LIVE_PAYMENTS_MODE: "degraded" }, log });
    assert.equal(config.value("payments/mode", z.enum(["normal", "degraded"]), "normal").get(), "degraded");
    config.close();
  });

  test("an absent key answers the fallback", () => {
    const { log } = createLogCapture();
    const config = createEnvLiveConfig({ env: {}, log });
    assert.equal(config.value(KEY, rate, 0.05).get(), 0.05);
    config.close();
  });

  test("an invalid env value is refused with a warning naming the key and zod's message", () => {
    const { log, entries } = createLogCapture();
    const config = createEnvLiveConfig({ env: { [ENV_NAME]: "7" }, log });
    assert.equal(config.value(KEY, rate, 0.05).get(), 0.05);
    const warning = entries.find(isWarnAbout(KEY));
    assert.ok(warning, "a warning names the key");
    assert.match(String(warning.error), /<=1/);
    config.close();
  });

  test("file values override the environment", async (t) => {
    const file = await tempFile(t, { [KEY]: 0.3 });
    const { log } = createLogCapture();
    const config = createEnvLiveConfig({ env: { [ENV_NAME]: "0.1" }, file, log });
    assert.equal(config.value(KEY, rate, 0.05).get(), 0.3);
    config.close();
  });

  test("a change to the file reaches onChange; a key removed from it falls back to the environment", TEST_TIMEOUT, async (t) => {
    const file = await tempFile(t, { [KEY]: 0.3 });
    const { log } = createLogCapture();
    const config = createEnvLiveConfig({ env: { [ENV_NAME]: "0.1" }, file, log, debounceMs: 20 });
    t.onTestFinished(() => config.close());
    const declineRate = config.value(KEY, rate, 0.05);

    const changed = nextChange(declineRate);
    await replaceFile(file, { [KEY]: 0.4 });
    assert.deepEqual(await changed, { value: 0.4, previous: 0.3 });

    const removed = nextChange(declineRate);
    await replaceFile(file, {});
    assert.deepEqual(await removed, { value: 0.1, previous: 0.4 });
  });

  test("an invalid value in the file is refused and the previous value kept, without notifying", TEST_TIMEOUT, async (t) => {
    const file = await tempFile(t, { [KEY]: 0.3 });
    const logs = createLogCapture();
    const config = createEnvLiveConfig({ env: {}, file, log: logs.log, debounceMs: 20 });
    t.onTestFinished(() => config.close());
    const declineRate = config.value(KEY, rate, 0.05);
    let notified = 0;
    declineRate.onChange(() => (notified += 1));

    const refused = logs.next(isWarnAbout(KEY));
    await replaceFile(file, { [KEY]: "lots" });
    const warning = await refused;
    assert.match(String(warning.error), /expected number/);
    assert.equal(declineRate.get(), 0.3);
    assert.equal(notified, 0);

    const changed = nextChange(declineRate);
    await replaceFile(file, { [KEY]: 0.2 });
    assert.deepEqual(await changed, { value: 0.2, previous: 0.3 });
  });

  test("a file that is not a JSON object is refused as a whole and every value kept", TEST_TIMEOUT, async (t) => {
    const file = await tempFile(t, { [KEY]: 0.3 });
    const logs = createLogCapture();
    const config = createEnvLiveConfig({ env: {}, file, log: logs.log, debounceMs: 20 });
    t.onTestFinished(() => config.close());
    const declineRate = config.value(KEY, rate, 0.05);

    const refused = logs.next((entry) => entry.level === "warn" && entry.file === file);
    await replaceFile(file, "{ not json");
    await refused;
    assert.equal(declineRate.get(), 0.3);
  });

  test("a file that appears after start is picked up", TEST_TIMEOUT, async (t) => {
    const file = await tempFile(t);
    const { log } = createLogCapture();
    const config = createEnvLiveConfig({ env: {}, file, log, debounceMs: 20 });
    t.onTestFinished(() => config.close());
    const declineRate = config.value(KEY, rate, 0.05);
    assert.equal(declineRate.get(), 0.05);

    const changed = nextChange(declineRate);
    await replaceFile(file, { [KEY]: 0.5 });
    assert.deepEqual(await changed, { value: 0.5, previous: 0.05 });
  });
});
