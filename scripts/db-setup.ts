/**
 * `npm run db:setup`: creates a database and a login role per service on the
 * PostgreSQL at MESHWORK_PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres)
 * and prints the *_DATABASE_URL each service should use.
 *
 * For a server that does not trust local connections:
 *   npm run db:setup -- --passwords                 a new random password per role, set on the role
 *   npm run db:setup -- --passwords --env-file F    the URLs go to F (mode 0600) rather than the terminal
 * Setting passwords again replaces them: restart the services with the new URLs.
 * Without --passwords the roles have none (the local trust server of `npm run mesh` and the tests).
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { newPassword } from "./lib/secrets.js";
import { ensureServiceDatabase, SERVICES_WITH_DATABASES } from "./lib/service-databases.js";

const adminUrl = process.env.MESHWORK_PG_ADMIN_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export async function dbSetup(args: readonly string[], admin = adminUrl): Promise<string> {
  const { values } = parseArgs({ args: [...args], options: { passwords: { type: "boolean", default: false }, "env-file": { type: "string" } }, strict: true });
  if (values["env-file"] !== undefined && !values.passwords) throw new Error("--env-file is for --passwords: without passwords the URLs hold nothing secret");
  const lines: string[] = [];
  for (const service of SERVICES_WITH_DATABASES) {
    const created = await ensureServiceDatabase(admin, service, "", values.passwords ? { password: newPassword() } : {});
    lines.push(`${service.toUpperCase()}_DATABASE_URL=${created.url}`);
  }
  const text = `${lines.join("\n")}\n`;
  if (values["env-file"] !== undefined) {
    writeFileSync(values["env-file"], text, { mode: 0o600 });
    return `wrote ${lines.length} database URLs with their passwords to ${values["env-file"]}\n`;
  }
  return text;
}

if (import.meta.filename === process.argv[1]) {
  dbSetup(process.argv.slice(2)).then(
    (output) => process.stdout.write(output),
    (error: unknown) => {
      process.stderr.write(`db:setup failed: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
