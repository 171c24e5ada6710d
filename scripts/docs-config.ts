/**
 * `npm run docs:config`: rewrites the settings table in each service's
 * README from its config spec (test/readme-config.test.ts fails when one is stale).
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { describeConfig, type ConfigSpec } from "@meshwork/platform";
import { catalogConfigSpec } from "@meshwork/catalog";
import { gatewayConfigSpec } from "@meshwork/gateway";
import { identityConfigSpec } from "@meshwork/identity";
import { notificationsConfigSpec } from "@meshwork/notifications";
import { ordersConfigSpec } from "@meshwork/orders";
import { paymentsConfigSpec } from "@meshwork/payments";

export const CONFIG_SPECS: Readonly<Record<string, ConfigSpec>> = {
  identity: identityConfigSpec,
  catalog: catalogConfigSpec,
  payments: paymentsConfigSpec,
  orders: ordersConfigSpec,
  notifications: notificationsConfigSpec,
  gateway: gatewayConfigSpec,
};

export const readmeOf = (service: string): string => path.resolve(import.meta.dirname, "..", "services", service, "README.md");

const blockOf = (service: string): RegExp => new RegExp(`<!-- ${service}-config:start -->\\n([\\s\\S]*?)\\n?<!-- ${service}-config:end -->`);

/** The table as the README holds it, or undefined when the markers are missing. */
export function tableIn(readme: string, service: string): string | undefined {
  return blockOf(service).exec(readme)?.[1];
}

/** The README with the service's table replaced by `table`. */
export function withTable(readme: string, service: string, table: string): string {
  return readme.replace(blockOf(service), () => `<!-- ${service}-config:start -->\n${table}\n<!-- ${service}-config:end -->`);
}

async function main(): Promise<void> {
  for (const [service, spec] of Object.entries(CONFIG_SPECS)) {
    const file = readmeOf(service);
    const readme = await readFile(file, "utf8");
    if (tableIn(readme, service) === undefined) throw new Error(`${file} has no ${service}-config markers`);
    await writeFile(file, withTable(readme, service, describeConfig(spec)));
    process.stdout.write(`${path.relative(process.cwd(), file)}: table written\n`);
  }
}

if (import.meta.filename === process.argv[1]) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
