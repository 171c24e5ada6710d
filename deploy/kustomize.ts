import { execFile } from "node:child_process";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import { writeKubernetesSecrets } from "../scripts/k8s-secrets.js";
import type { KubeObject } from "./graph-checks.js";

/**
 * `kubectl kustomize DIR` (offline), as the list of objects it renders.
 *
 * The Secrets' contents are generated, never committed (npm run k8s:secrets),
 * so the render runs on a temporary copy of DIR given secrets of its own when
 * base/secrets is missing there: checks see the manifests exactly as a user
 * applies them, and the working tree is never written to.
 */
export async function renderKustomize(dir: string): Promise<KubeObject[]> {
  const copy = await mkdtemp(path.join(tmpdir(), "meshwork-kustomize-"));
  try {
    await cp(dir, copy, { recursive: true });
    // mesh/linkerd (base/ inside it) or mesh/linkerd/base itself.
    const base = existsSync(path.join(copy, "base", "kustomization.yaml")) ? path.join(copy, "base") : copy;
    if (readFileSync(path.join(base, "kustomization.yaml"), "utf8").includes("secrets/")) writeKubernetesSecrets(path.join(base, "secrets"));
    const { stdout } = await promisify(execFile)("kubectl", ["kustomize", copy], { maxBuffer: 16 * 1024 * 1024 });
    return parseAllDocuments(stdout)
      .map((document) => {
        if (document.errors.length > 0) throw new Error(`kubectl kustomize ${dir} printed invalid YAML: ${document.errors[0]!.message}`);
        return document.toJS() as KubeObject | null;
      })
      .filter((object): object is KubeObject => object !== null);
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
}
