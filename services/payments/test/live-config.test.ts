/**
 * The simulated processor follows live configuration: a change to the JSON
 * file (the env/file adapter the service uses without Consul) reaches it
 * without a restart, and an invalid value is refused with the old one kept.
 */
import assert from "node:assert/strict";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import { createEnvLiveConfig, type LiveValue } from "@meshwork/platform";
import { createSimulatedProcessor } from "../src/adapters/payment-processor.simulated.js";
import { bindProcessorSettings, LIVE_KEYS } from "../src/live-settings.js";
import { ProcessorUnavailableError } from "../src/payments.js";
import { createLogCapture } from "@meshwork/testing";

const ask = { idempotencyKey: "order-1", amountMinor: 100, currency: "EUR", cardToken: "tok_visa" };
const never = new AbortController().signal;
const REFUSED = "refused invalid live config value; keeping the previous one";
const TEST_TIMEOUT = { timeout: 10_000 };

function nextChange<T>(live: LiveValue<T>): Promise<T> {
  return new Promise((resolve) => {
    const off = live.onChange((value) => {
      off();
      resolve(value);
    });
  });
}

/** Replaces the file in one step, as editors and ConfigMap updates do. */
async function replaceFile(file: string, content: unknown): Promise<void> {
  const temporary = `${file}.${process.hrtime.bigint()}.tmp`;
  await writeFile(temporary, JSON.stringify(content));
  await rename(temporary, file);
}

async function liveFile(t: TestScope, content: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "meshwork-payments-live-"));
  t.onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, "live.json");
  await writeFile(file, JSON.stringify(content));
  return file;
}

describe("processor live settings", () => {
  test("unset keys mean no latency and no failures; MESHWORK_LIVE_* variables set them at start", () => {
    const { log } = createLogCapture({ service: "payments", level: "info" });
    const defaults = bindProcessorSettings(createEnvLiveConfig({ env: {}, log }));
    assert.equal(defaults.latencyMs.get(), 0);
    assert.equal(defaults.transientFailureRate.get(), 0);
    const fromEnv = bindProcessorSettings(
      createEnvLiveConfig({
        env: { MESHWORK_LIVE_PAYMENTS_PROCESSOR_LATENCY_MS: "40", MESHWORK_LIVE_PAYMENTS_TRANSIENT_FAILURE_RATE: "0.25" },
        log,
      }),
    );
    assert.equal(fromEnv.latencyMs.get(), 40);
    assert.equal(fromEnv.transientFailureRate.get(), 0.25);
  });

  test("out-of-range or non-numeric values are refused at start in favour of the defaults", () => {
    const { log, entries } = createLogCapture({ service: "payments", level: "info" });
    const settings = bindProcessorSettings(
      createEnvLiveConfig({
        env: { MESHWORK_LIVE_PAYMENTS_PROCESSOR_LATENCY_MS: "-5", MESHWORK_LIVE_PAYMENTS_TRANSIENT_FAILURE_RATE: "true" },
        log,
      }),
    );
    assert.equal(settings.latencyMs.get(), 0);
    assert.equal(settings.transientFailureRate.get(), 0);
    const refused = entries.filter((entry) => entry.msg === REFUSED).map((entry) => entry.key);
    assert.deepEqual(refused.sort(), [LIVE_KEYS.processorLatencyMs, LIVE_KEYS.transientFailureRate]);
  });

  test("a file change turns failures and latency up without a restart; an invalid rate (7) is refused and the old rate kept", TEST_TIMEOUT, async (t) => {
    const file = await liveFile(t, {});
    const logs = createLogCapture({ service: "payments", level: "info" });
    const source = createEnvLiveConfig({ env: {}, file, log: logs.log, debounceMs: 10 });
    t.onTestFinished(() => source.close());
    const settings = bindProcessorSettings(source);
    const waited: number[] = [];
    const processor = createSimulatedProcessor({
      latencyMs: () => settings.latencyMs.get(),
      transientFailureRate: () => settings.transientFailureRate.get(),
      random: () => 0.5,
      wait: async (ms) => void waited.push(ms),
    });
    assert.deepEqual(await processor.authorize(ask, never), { approved: true });
    assert.deepEqual(waited, []);

    // Bindings are offered the file in the order they were made, latency
    // first: once the rate has changed, both have.
    const rateChanged = nextChange(settings.transientFailureRate);
    await replaceFile(file, { [LIVE_KEYS.processorLatencyMs]: 120, [LIVE_KEYS.transientFailureRate]: 0.75 });
    assert.equal(await rateChanged, 0.75);
    await assert.rejects(processor.authorize(ask, never), ProcessorUnavailableError);
    assert.deepEqual(waited, [120]);

    const refused = logs.next((entry) => entry.msg === REFUSED && entry.key === LIVE_KEYS.transientFailureRate);
    await replaceFile(file, { [LIVE_KEYS.processorLatencyMs]: 120, [LIVE_KEYS.transientFailureRate]: 7 });
    await refused;
    assert.equal(settings.transientFailureRate.get(), 0.75);
    await assert.rejects(processor.authorize(ask, never), ProcessorUnavailableError);

    const calmed = nextChange(settings.transientFailureRate);
    await replaceFile(file, { [LIVE_KEYS.transientFailureRate]: 0.25 });
    assert.equal(await calmed, 0.25);
    assert.equal(settings.latencyMs.get(), 0, "a key removed from the file goes back to its default");
    assert.deepEqual(await processor.authorize(ask, never), { approved: true });
  });
});
