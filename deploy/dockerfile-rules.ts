/**
 * The rules every Meshwork image follows, checked on the Dockerfile's syntax
 * tree (dockerfile-ast, the parser behind the VS Code Docker language server).
 * The rules themselves are this project's, so they are written here.
 */
import { Arg, Copy, DockerfileParser, type Instruction } from "dockerfile-ast";

export interface Stage {
  readonly name: string | undefined;
  /** The image or earlier stage it starts from. */
  readonly from: string;
  readonly instructions: readonly Instruction[];
}

export interface ParsedDockerfile {
  /** The ARGs declared before the first FROM (the only ones a FROM can use), with their defaults. */
  readonly globalArgs: ReadonlyMap<string, string | undefined>;
  readonly stages: readonly Stage[];
}

export function parseDockerfile(text: string): ParsedDockerfile {
  const stages: { name: string | undefined; from: string; instructions: Instruction[] }[] = [];
  const globalArgs = new Map<string, string | undefined>();
  for (const instruction of DockerfileParser.parse(text).getInstructions()) {
    if (stages.length === 0 && instruction instanceof Arg) {
      const property = instruction.getProperty();
      if (property) globalArgs.set(property.getName(), property.getValue() ?? undefined);
      continue;
    }
    if (instruction.getKeyword() === "FROM") {
      const args = instruction.getArguments().map((arg) => arg.getValue());
      const asIndex = args.findIndex((arg) => arg.toLowerCase() === "as");
      const image = args.find((arg) => !arg.startsWith("--"));
      if (!image) throw new Error(`line ${instruction.getRange().start.line + 1}: FROM names no image`);
      stages.push({ name: asIndex >= 0 ? args[asIndex + 1] : undefined, from: image, instructions: [] });
    } else if (stages.length > 0) {
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return { globalArgs, stages };
}

/**
 * The image a FROM names once the global ARGs' defaults are filled in
 * (`FROM ${NODE_IMAGE}` with `ARG NODE_IMAGE=node:22.23.3-bookworm-slim`
 * is node:22.23.3-bookworm-slim): what a build without --build-arg uses.
 * Throws when it uses an ARG that is not declared before the first FROM or has
 * no default.
 */
export function resolveImage(file: ParsedDockerfile, from: string): string {
  return from.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_match, braced: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare)!;
    if (!file.globalArgs.has(name)) throw new Error(`"${from}" uses ${name}, which no ARG before the first FROM declares`);
    const value = file.globalArgs.get(name);
    if (value === undefined || value === "") throw new Error(`"${from}" uses ARG ${name}, which has no default`);
    return value;
  });
}

/** The words of an instruction: JSON form or shell form alike. */
export const words = (instruction: Instruction): string[] => instruction.getArguments().map((arg) => arg.getValue().replace(/^\[?"?|"?,?\]?$/g, ""));

const EXACT_NODE_TAG = /^node:\d+\.\d+\.\d+(-[a-z0-9-]+)?(@sha256:[0-9a-f]{64})?$/;

/** The chain of stages a stage builds on, itself first. */
function lineage(file: ParsedDockerfile, stage: Stage): Stage[] {
  const chain = [stage];
  let current = stage;
  for (;;) {
    const parent = file.stages.find((candidate) => candidate.name === current.from);
    if (!parent) return chain;
    chain.push(parent);
    current = parent;
  }
}

/**
 * What is wrong with the Dockerfile, as sentences (empty when it follows the
 * rules). `runtimeStages` are the stages images are made from.
 */
export function dockerfileProblems(text: string, runtimeStages: readonly string[]): string[] {
  const file = parseDockerfile(text);
  const problems: string[] = [];
  const stageNames = new Set(file.stages.map((stage) => stage.name).filter((name) => name !== undefined));
  if (file.stages.length < 2) problems.push("not a multi-stage build: dependencies must be installed in a stage of their own");

  for (const stage of file.stages) {
    if (stageNames.has(stage.from)) continue;
    let image: string;
    try {
      image = resolveImage(file, stage.from);
    } catch (error) {
      problems.push(`stage ${stage.name ?? "(unnamed)"}: ${(error as Error).message}: give it a default that pins a Node image by exact version`);
      continue;
    }
    if (!EXACT_NODE_TAG.test(image)) {
      const shown = image === stage.from ? `"${image}"` : `"${stage.from}" (by default "${image}")`;
      problems.push(`stage ${stage.name ?? "(unnamed)"} starts from ${shown}: pin a Node image by exact version, e.g. node:22.23.3-bookworm-slim`);
    }
  }

  for (const name of runtimeStages) {
    const stage = file.stages.find((candidate) => candidate.name === name);
    if (!stage) {
      problems.push(`no stage named ${name}`);
      continue;
    }
    // Instructions in force for the image: from the root of its lineage down.
    const effective = lineage(file, stage)
      .reverse()
      .flatMap((part) => part.instructions);
    const last = (keyword: string) => effective.filter((instruction) => instruction.getKeyword() === keyword).at(-1);

    const user = last("USER");
    const userName = user ? words(user)[0]?.split(":")[0] : undefined;
    if (!userName || userName === "root" || userName === "0") problems.push(`stage ${name} runs as root: end with USER and a non-root user`);

    const healthcheck = last("HEALTHCHECK");
    if (!healthcheck || words(healthcheck)[0]?.toUpperCase() === "NONE") problems.push(`stage ${name} has no HEALTHCHECK`);
    else if (!words(healthcheck).some((word) => word.endsWith("health-probe.js"))) problems.push(`stage ${name}'s HEALTHCHECK does not use the compiled gRPC health probe (health-probe.js)`);

    // The image runs JavaScript compiled at build time: no TypeScript loader at run time.
    for (const keyword of ["HEALTHCHECK", "ENTRYPOINT", "CMD"]) {
      const instruction = last(keyword);
      if (instruction && /\btsx\b|\.ts\b/.test(instruction.getArgumentsContent() ?? "")) {
        problems.push(`stage ${name}'s ${keyword} runs TypeScript (tsx or a .ts file): compile it in a build stage`);
      }
    }

    const entrypoint = last("ENTRYPOINT");
    if (!entrypoint || !words(entrypoint).some((word) => /(^|\/)tini$/.test(word))) problems.push(`stage ${name} has no init (tini) as PID 1 to forward SIGTERM`);

    for (const instruction of effective) {
      const keyword = instruction.getKeyword();
      const content = instruction.getArgumentsContent() ?? "";
      // Installing the package manager itself (pinned) is not a dependency of the service.
      const withoutNpmItself = content.replace(/\bnpm install -g npm@\d+\.\d+\.\d+/g, "");
      if (keyword === "RUN" && /\bnpm (ci|install|i)\b/.test(withoutNpmItself) && !/--omit[= ]dev\b/.test(withoutNpmItself)) {
        problems.push(`stage ${name} installs packages without --omit=dev: ${content.split("\n")[0]}`);
      }
      if ((keyword === "COPY" || keyword === "ADD") && /node_modules/.test(content)) {
        problems.push(`stage ${name} copies node_modules directly; take them from the production-dependencies stage`);
      }
    }
    const fromDeps = effective.filter((instruction) => instruction instanceof Copy && instruction.getFromFlag()?.getValue() === "deps");
    if (fromDeps.length === 0) problems.push(`stage ${name} does not take its node_modules from the deps stage`);
  }

  const deps = file.stages.find((stage) => stage.name === "deps");
  if (!deps) problems.push("no deps stage installing production dependencies");
  else if (!deps.instructions.some((instruction) => instruction.getKeyword() === "RUN" && /npm ci\b[^\n]*--omit=dev/.test(instruction.getArgumentsContent() ?? ""))) {
    problems.push("the deps stage does not run npm ci --omit=dev");
  }
  return problems;
}

/** How the Dockerfile names the service it builds (`--build-arg SERVICE=...`), as it appears in its instructions. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: the Dockerfile's variable, not a template
export const SERVICE_ARGUMENT = "${SERVICE}";
