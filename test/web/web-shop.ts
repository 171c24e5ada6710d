/**
 * The real shop for the browser and contract tests: all six services in this
 * process (scripts/lib/all-in-one.ts) on free ports and throw-away embedded
 * databases, with the gateway serving the built web app.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { OrderService } from "@meshwork/contracts/shop/orders/v1/orders";
import { startAllInOne, type RunningShop } from "../../scripts/lib/all-in-one.js";
import { ensureWebBuild } from "../../scripts/lib/web-build.js";

export interface WebShop {
  readonly shop: RunningShop;
  /** http://127.0.0.1:PORT (no trailing slash). */
  readonly url: string;
  readonly identity: Client<typeof IdentityService>;
  readonly orders: Client<typeof OrderService>;
  /** Connect over HTTP/1.1 to the gateway, for other clients. */
  readonly transport: Transport;
  /** The shopper's token, through the same API the browser uses. */
  signIn(email: string, password: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startWebShop(extraEnv: Record<string, string> = {}): Promise<WebShop> {
  const web = await ensureWebBuild();
  // One embedded PostgreSQL for all six (a schema each), as npm start runs them.
  const dataDir = await mkdtemp(path.join(tmpdir(), "meshwork-web-"));
  const env: Record<string, string> = { IDENTITY_SCRYPT_N: "1024", NOTIFICATIONS_WATCH_POLL_MS: "200", GATEWAY_WEB_DIR: web.dir, GATEWAY_CATALOG_CACHE_MS: "0" };
  for (const prefix of ["IDENTITY", "CATALOG", "PAYMENTS", "ORDERS", "NOTIFICATIONS", "GATEWAY"]) {
    env[`${prefix}_PORT`] = "0";
    env[`${prefix}_DATA_DIR`] = dataDir;
    env[`${prefix}_LOG_LEVEL`] = "error";
  }
  const shop = await startAllInOne({ ...env, ...extraEnv }).catch(async (error: unknown) => {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  });
  const url = `http://127.0.0.1:${shop.ports.gateway}`;
  const transport = createConnectTransport({ baseUrl: url, httpVersion: "1.1" });
  const identity = createClient(IdentityService, transport);
  return {
    shop,
    url,
    identity,
    transport,
    orders: createClient(OrderService, transport),
    signIn: async (email, password) => (await identity.signIn({ email, password })).accessToken,
    async stop() {
      await shop.stop("test done");
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
