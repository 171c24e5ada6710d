/**
 * `npm run k8s:secrets [DIR]`: generates the Kubernetes Secrets' contents
 * into DIR (default mesh/linkerd/base/secrets, gitignored), which the
 * kustomization's secretGenerator reads: `kubectl apply -k mesh/linkerd`
 * then creates the Secrets. Nothing is printed but the file names.
 *
 * Run once per deployment: a second run keeps what is there, because the
 * PostgreSQL roles were created with those passwords on the first start. To
 * start afresh, delete the folder together with the PostgreSQL volume.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { generateSecrets, kubernetesSecretFiles } from "./lib/secrets.js";

export const DEFAULT_K8S_SECRETS_DIR = path.resolve(import.meta.dirname, "../mesh/linkerd/base/secrets");

/** Writes every file when none exists; keeps them all when all exist; refuses a partial set, naming what is missing. */
export function writeKubernetesSecrets(dir: string): { written: boolean; files: string[] } {
  const files = kubernetesSecretFiles(generateSecrets());
  const names = Object.keys(files);
  const present = names.filter((name) => existsSync(path.join(dir, name)));
  if (present.length === names.length) return { written: false, files: names };
  if (present.length > 0) {
    throw new Error(
      `${dir} holds only part of the secrets (missing ${names.filter((name) => !present.includes(name)).join(", ")}): a new value would not match what PostgreSQL and RabbitMQ were given; delete the folder (and the PostgreSQL volume) to start afresh`,
    );
  }
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true, mode: 0o700 });
    writeFileSync(path.join(dir, name), content, { mode: 0o600 });
  }
  return { written: true, files: names };
}

if (import.meta.filename === process.argv[1]) {
  const dir = path.resolve(process.argv[2] ?? DEFAULT_K8S_SECRETS_DIR);
  try {
    const { written, files } = writeKubernetesSecrets(dir);
    process.stdout.write(`${written ? "generated" : "kept (already generated)"}: ${files.map((file) => path.join(path.relative(process.cwd(), dir), file)).join(", ")}\n`);
  } catch (error) {
    process.stderr.write(`k8s:secrets: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}
