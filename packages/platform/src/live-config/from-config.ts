import type { Logger } from "../logger.js";
import { parseConsulAddress } from "../config.js";
import { createConsulLiveConfig } from "./consul-kv.js";
import { createEnvLiveConfig } from "./env.js";
import type { LiveConfigSource } from "./ports.js";

/**
 * A service's live settings: Consul KV when an agent is configured (every
 * instance sees one change), otherwise MESHWORK_LIVE_* variables overridden
 * by the optional JSON file, which is re-read when it changes.
 */
export function createLiveConfigFor(
  config: { readonly consulAddr: string; readonly consulToken: string; readonly liveConfigFile: string },
  env: Readonly<Record<string, string | undefined>>,
  log: Logger,
): LiveConfigSource {
  if (config.consulAddr !== "") {
    const address = parseConsulAddress(config.consulAddr);
    return createConsulLiveConfig({ consul: { ...address, ...(config.consulToken ? { token: config.consulToken } : {}) }, log });
  }
  return createEnvLiveConfig({ env: env as NodeJS.ProcessEnv, log, ...(config.liveConfigFile ? { file: config.liveConfigFile } : {}) });
}
