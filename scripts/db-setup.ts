/**
 * `npm run db:setup`: creates a database and a login role per service on the
 * PostgreSQL at MESHWORK_PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres)
 * and prints the *_DATABASE_URL each service should use.
 */
import { ensureServiceDatabase, SERVICES_WITH_DATABASES } from "./lib/service-databases.js";

const adminUrl = process.env.MESHWORK_PG_ADMIN_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

async function main(): Promise<void> {
  for (const service of SERVICES_WITH_DATABASES) {
    const created = await ensureServiceDatabase(adminUrl, service);
    process.stdout.write(`${service.toUpperCase()}_DATABASE_URL=${created.url}\n`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`db:setup failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
