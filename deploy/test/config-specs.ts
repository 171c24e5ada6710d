/** Each service's configuration spec, by service: what the deployment tests check compose and the manifests against. */
import { catalogConfigSpec } from "../../services/catalog/src/config.js";
import { gatewayConfigSpec } from "../../services/gateway/src/config.js";
import { identityConfigSpec } from "../../services/identity/src/config.js";
import { notificationsConfigSpec } from "../../services/notifications/src/config.js";
import { ordersConfigSpec } from "../../services/orders/src/config.js";
import { paymentsConfigSpec } from "../../services/payments/src/config.js";
import type { AppService } from "../call-graph.js";

export const CONFIG_SPECS: Record<AppService, Record<string, { env: string; secret?: boolean }>> = {
  gateway: gatewayConfigSpec,
  identity: identityConfigSpec,
  catalog: catalogConfigSpec,
  orders: ordersConfigSpec,
  payments: paymentsConfigSpec,
  notifications: notificationsConfigSpec,
};

/** Every environment variable `app` reads: a secret setting also as `<env>_FILE` (packages/platform/src/config.ts). */
export const settingsOf = (app: AppService): Set<string> => new Set(Object.values(CONFIG_SPECS[app]).flatMap((setting) => (setting.secret ? [setting.env, `${setting.env}_FILE`] : [setting.env])));
