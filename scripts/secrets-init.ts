/**
 * compose's `secrets` one-shot service (compose.yaml), compiled into every
 * service image as scripts/dist/secrets-init.js:
 *
 *   node scripts/dist/secrets-init.js DIR
 *
 * DIR/<consumer> is the volume of each consumer (postgres, rabbitmq, consul
 * and every service; scripts/lib/secrets.ts says who gets what). On the first
 * run it generates every secret; later runs keep them (the PostgreSQL roles
 * and Consul tokens were created with them) and rewrite only what is derived
 * from them (URLs, RabbitMQ's definitions), so a change of permissions in
 * code reaches the broker on the next `up`. `down` keeps the volumes, `down -v`
 * removes them and the next `up` starts afresh (with fresh databases too).
 * Values are never printed.
 */
import { chmodSync, existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { composeSecretFiles, RAW_SECRET_FILES, SECRET_CONSUMERS, secretsFromRaw } from "./lib/secrets.js";

/** Writes whole or not at all: a reader never sees half a password. Readable by the consumer's own user, whatever its uid: only that consumer mounts the volume. */
function writeAtomically(file: string, content: string): void {
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, content, { mode: 0o444 });
  chmodSync(temporary, 0o444);
  renameSync(temporary, file);
}

export function initSecrets(root: string): { created: string[]; kept: string[] } {
  const missing = SECRET_CONSUMERS.filter((consumer) => !existsSync(path.join(root, consumer)) || !statSync(path.join(root, consumer)).isDirectory());
  if (missing.length > 0) throw new Error(`no volume mounted for ${missing.map((consumer) => path.join(root, consumer)).join(", ")}: each consumer's secrets go to a volume of its own`);
  const raw = new Map<string, string>();
  const created: string[] = [];
  const kept: string[] = [];
  for (const { consumer, file, generate } of RAW_SECRET_FILES) {
    const where = path.join(root, consumer, file);
    const existing = existsSync(where) ? readFileSync(where, "utf8").replace(/\r?\n$/, "") : "";
    if (existing !== "") {
      raw.set(`${consumer}/${file}`, existing);
      kept.push(`${consumer}/${file}`);
    } else {
      const value = generate();
      writeAtomically(where, value);
      raw.set(`${consumer}/${file}`, value);
      created.push(`${consumer}/${file}`);
    }
  }
  const files = composeSecretFiles(secretsFromRaw(raw));
  for (const consumer of SECRET_CONSUMERS) {
    for (const [file, content] of Object.entries(files[consumer])) writeAtomically(path.join(root, consumer, file), content);
  }
  return { created, kept };
}

if (import.meta.filename === process.argv[1]) {
  const root = process.argv[2];
  if (!root) {
    process.stderr.write("usage: node secrets-init.js DIR (DIR/<consumer> mounted for each of postgres, rabbitmq, consul and the services)\n");
    process.exit(2);
  }
  try {
    const { created, kept } = initSecrets(root);
    process.stdout.write(`secrets: ${created.length} generated${created.length ? ` (${created.join(", ")})` : ""}, ${kept.length} kept from an earlier run; derived files rewritten\n`);
  } catch (error) {
    process.stderr.write(`secrets: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}
