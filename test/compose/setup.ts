/**
 * The compose test's global setup: the same path as `npm run compose:up`
 * (stand-ins where no registry answers, every image, `up -d`, every container
 * healthy), and afterwards always `down -v`, so nothing is left behind,
 * whether the tests passed, failed or timed out. A compose left over from an
 * earlier, interrupted run is removed first.
 *
 * MESHWORK_COMPOSE_REUSE=1 runs the tests against a compose already up and
 * healthy (`npm run compose:up`) and leaves it running: for working on the
 * tests, not for CI.
 */
import { buildAll, composeInherit, composeSetup, down, downCompletely, readyReport, upAndWaitHealthy, waitHealthy } from "../../scripts/lib/compose.js";

export default async function setup(): Promise<() => Promise<void>> {
  const setup = await composeSetup();
  if (process.env.MESHWORK_COMPOSE_REUSE === "1") {
    await waitHealthy(5000);
    return async () => undefined;
  }
  const started = Date.now();
  await down(setup, { volumes: true });
  try {
    await buildAll(setup, { quiet: true });
    const built = Date.now();
    const ready = await upAndWaitHealthy(setup, 240_000);
    process.stdout.write(
      [
        `compose: ${setup.offline ? "offline (stand-ins, compose.offline.yaml)" : "compose.yaml with pulled images"}; built in ${((built - started) / 1000).toFixed(0)} s, healthy ${((Date.now() - built) / 1000).toFixed(0)} s after`,
        ...(await readyReport(ready)),
        "",
      ].join("\n"),
    );
  } catch (error) {
    await composeInherit(setup, ["ps"]).catch(() => undefined);
    await composeInherit(setup, ["logs", "--tail", "40"]).catch(() => undefined);
    await down(setup, { volumes: true });
    throw error;
  }
  // Checked, and silent when nothing is left: the run's last line stays its summary.
  return () => downCompletely(setup);
}
