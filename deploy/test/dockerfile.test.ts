import assert from "node:assert/strict";
import dockerignore from "@balena/dockerignore";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, test } from "vitest";
import { Copy } from "dockerfile-ast";
import { APP_SERVICES } from "../call-graph.js";
import { dockerfileProblems, parseDockerfile, resolveImage, SERVICE_ARGUMENT, words } from "../dockerfile-rules.js";

// The package is CommonJS (module.exports = factory) but its types declare an
// ES default export, which NodeNext reads as a property: cast to the factory.
const ignore = dockerignore as unknown as (typeof dockerignore)["default"];
const root = path.resolve(import.meta.dirname, "../..");
const dockerfile = readFileSync(path.join(root, "Dockerfile"), "utf8");
const RUNTIME_STAGES = ["service", "gateway"];

describe("Dockerfile rules", () => {
  test("the Dockerfile is multi-stage, pinned, non-root, health-checked and installs production dependencies only", () => {
    assert.deepEqual(dockerfileProblems(dockerfile, RUNTIME_STAGES), []);
  });

  const broken: [string, (text: string) => string, RegExp][] = [
    ["a floating latest tag", (text) => text.replace(/^ARG NODE_IMAGE=\S+/m, "ARG NODE_IMAGE=node:latest"), /pin a Node image by exact version/],
    ["a major-only tag", (text) => text.replace(/^ARG NODE_IMAGE=\S+/m, "ARG NODE_IMAGE=node:22-bookworm-slim"), /pin a Node image by exact version/],
    ["a floating tag written in the FROM itself", (text) => text.replace(/^FROM \$\{NODE_IMAGE\}/m, "FROM node:22"), /pin a Node image by exact version/],
    ["a base image argument with no default", (text) => text.replace(/^ARG NODE_IMAGE=\S+/m, "ARG NODE_IMAGE"), /ARG NODE_IMAGE, which has no default/],
    [
      "a base image argument declared too late for FROM",
      (text) => text.replace(/^ARG NODE_IMAGE=\S+\n/m, "").replace("WORKDIR /app", "WORKDIR /app\nARG NODE_IMAGE=node:22.23.3-bookworm-slim"),
      /uses NODE_IMAGE, which no ARG before the first FROM declares/,
    ],
    [
      "a health check run through tsx",
      (text) => text.replace('CMD ["node", "scripts/dist/health-probe.js"]', 'CMD ["node", "--import", "tsx", "scripts/dist/health-probe.js"]'),
      /HEALTHCHECK runs TypeScript/,
    ],
    ["the TypeScript health probe", (text) => text.replace('CMD ["node", "scripts/dist/health-probe.js"]', 'CMD ["node", "scripts/health-probe.ts"]'), /does not use the compiled gRPC health probe/],
    [
      "a service run from its TypeScript",
      (text) => text.replace('CMD ["sh", "-c", "exec node \\"$SERVICE_MAIN\\""]', 'CMD ["sh", "-c", "exec node --import tsx \\"$SERVICE_MAIN\\""]'),
      /CMD runs TypeScript/,
    ],
    ["no USER", (text) => text.replace(/^USER .*$/m, ""), /runs as root/],
    ["USER root", (text) => text.replace(/^USER .*$/m, "USER root"), /runs as root/],
    ["no HEALTHCHECK", (text) => text.replace(/^HEALTHCHECK[^\n]*\\\n[^\n]*\n/m, ""), /has no HEALTHCHECK/],
    ["dev dependencies installed", (text) => text.replace("npm ci --omit=dev", "npm ci"), /without --omit=dev|does not run npm ci --omit=dev/],
    ["a tool installed globally in the runtime image", (text) => text.replace("USER node", "RUN npm install -g nodemon\nUSER node"), /without --omit=dev/],
    ["an unpinned npm upgrade in the runtime image", (text) => text.replace("USER node", "RUN npm install -g npm@latest\nUSER node"), /without --omit=dev/],
    ["no init process", (text) => text.replace(/^ENTRYPOINT .*$/m, ""), /no init \(tini\)/],
    ["a single stage", (text) => `FROM node:22.23.3-bookworm-slim AS service\n${text.split(/^FROM base AS service$/m)[1]!.split(/^FROM /m)[0]}`, /not a multi-stage build/],
  ];
  for (const [what, edit, expected] of broken) {
    test(`a Dockerfile with ${what} is refused`, () => {
      const edited = edit(dockerfile);
      assert.notEqual(edited, dockerfile, "the edit must change the Dockerfile");
      const problems = dockerfileProblems(edited, what === "a single stage" ? ["service"] : RUNTIME_STAGES);
      assert.ok(
        problems.some((problem) => expected.test(problem)),
        `expected ${expected} among ${JSON.stringify(problems)}`,
      );
    });
  }
});

describe("the base image argument", () => {
  const file = parseDockerfile(dockerfile);

  test("every FROM that is not an earlier stage resolves, through NODE_IMAGE's default, to the pinned Node image", () => {
    assert.equal(file.globalArgs.get("NODE_IMAGE"), "node:22.23.3-bookworm-slim");
    const external = file.stages.filter((stage) => !file.stages.some((other) => other.name === stage.from));
    assert.ok(external.length > 0);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the Dockerfile's variable, not a template
    assert.deepEqual([...new Set(external.map((stage) => stage.from))], ["${NODE_IMAGE}"]);
    assert.deepEqual([...new Set(external.map((stage) => resolveImage(file, stage.from)))], ["node:22.23.3-bookworm-slim"]);
  });

  test("both spellings of a variable resolve, and a literal image is itself", () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Dockerfile variables, not templates
    const parsed = parseDockerfile("ARG REGISTRY=docker.io\nARG TAG=22.23.3-bookworm-slim\nFROM ${REGISTRY}/library/node:$TAG AS base\nFROM node:20.11.0 AS other\n");
    assert.equal(resolveImage(parsed, parsed.stages[0]!.from), "docker.io/library/node:22.23.3-bookworm-slim");
    assert.equal(resolveImage(parsed, parsed.stages[1]!.from), "node:20.11.0");
  });

  test("an ARG declared inside a stage is not one a FROM can use", () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Dockerfile variables, not templates
    const parsed = parseDockerfile("FROM node:22.23.3 AS base\nARG LATER=node:22.23.3\nFROM ${LATER} AS next\n");
    assert.equal(parsed.globalArgs.size, 0);
    assert.throws(() => resolveImage(parsed, parsed.stages[1]!.from), /uses LATER, which no ARG before the first FROM declares/);
  });
});

describe("the build context", () => {
  const rules = ignore().add(readFileSync(path.join(root, ".dockerignore"), "utf8").split("\n"));
  const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard"], { cwd: root, encoding: "utf8" }).split("\n").filter(Boolean);
  const context = files.filter((file) => !rules.ignores(file));

  test("holds every path the Dockerfile copies, for every service", () => {
    const copies = parseDockerfile(dockerfile)
      .stages.flatMap((stage) => stage.instructions)
      .filter((instruction): instruction is Copy => instruction instanceof Copy && !instruction.getFromFlag());
    assert.ok(copies.length > 0);
    for (const service of APP_SERVICES) {
      for (const copy of copies) {
        const sources = words(copy)
          .slice(0, -1)
          .map((source) => source.replaceAll(SERVICE_ARGUMENT, service).replace(/\/$/, ""));
        for (const source of sources) {
          const present = source === "." ? context.length > 0 : context.some((file) => file === source || file.startsWith(`${source}/`));
          assert.ok(present, `COPY ${source} (SERVICE=${service}) finds files in the build context`);
        }
      }
    }
  });

  test("has the manifests npm ci needs, and no tests, node_modules or local data", () => {
    for (const manifest of files.filter((file) => file === "package-lock.json" || file.endsWith("package.json"))) {
      assert.ok(context.includes(manifest), `${manifest} is in the build context`);
    }
    assert.deepEqual(
      context.filter((file) => file.endsWith(".test.ts") || file.endsWith(".suite.ts")),
      [],
    );
    for (const local of ["node_modules/tsx/package.json", "services/catalog/node_modules/x.js", ".data/pglite/PG_VERSION", "services/orders/.data/x", ".git/HEAD"]) {
      assert.ok(rules.ignores(local), `${local} stays out of the image`);
    }
  });
});

describe("what an image's production install can pull in", () => {
  const manifest = (file: string) => JSON.parse(readFileSync(path.join(root, file), "utf8")) as Record<string, Record<string, string> | undefined>;
  const fields = ["dependencies", "devDependencies", "optionalDependencies", "peerDependencies"] as const;

  test("no runtime workspace depends on the test kit, vitest or vite, in any field", () => {
    for (const file of ["packages/platform/package.json", "packages/contracts/package.json", ...APP_SERVICES.map((service) => `services/${service}/package.json`)]) {
      const named = fields.flatMap((field) => Object.keys(manifest(file)[field] ?? {}));
      const offending = named.filter((name) => name === "@meshwork/testing" || name === "vitest" || name.startsWith("@vitest/") || name === "vite");
      assert.deepEqual(offending, [], `${file} would bring the test tools into its image`);
    }
  });

  test("vitest comes in through the test kit only, not as one of the root's devDependencies", () => {
    // npm keeps a package that is dev on one path and optional on another
    // (devOptional) even under --omit=dev: vitest's optional peers (vite,
    // rolldown, coverage) listed at the root put 44 MB of test tools into every
    // service image's `npm ci --omit=dev --include-workspace-root` (measured
    // with npm run image:deps). Behind @meshwork/testing they stay out.
    const rootDev = Object.keys(manifest("package.json").devDependencies ?? {});
    assert.ok(rootDev.includes("@meshwork/testing"));
    assert.deepEqual(
      rootDev.filter((name) => name === "vitest" || name.startsWith("@vitest/")),
      [],
    );
    assert.ok(manifest("packages/testing/package.json").dependencies?.vitest, "the test kit brings vitest");
  });
});
