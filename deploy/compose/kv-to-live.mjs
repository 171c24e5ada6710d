// The offline compose run's seed (compose.offline.yaml, in consul-seed's
// place): turns the Consul KV export that compose.yaml seeds into Consul
// (deploy/consul/kv.json, base64 values under meshwork/) into the live
// settings file the services read when no Consul is configured, the same
// shape as the Kubernetes ConfigMaps' live.json: { "gateway/...": 20 }.
// Written to a temporary name and renamed, so a reader never sees half a file.
import { readFileSync, renameSync, writeFileSync } from "node:fs";

const [source = "/seed/kv.json", target = "/live/live.json"] = process.argv.slice(2);
const entries = JSON.parse(readFileSync(source, "utf8"));
if (!Array.isArray(entries)) throw new Error(`${source}: expected a Consul KV export (an array of { key, value })`);
const live = {};
for (const entry of entries) {
  if (typeof entry?.key !== "string" || !entry.key.startsWith("meshwork/")) throw new Error(`${source}: key ${JSON.stringify(entry?.key)} is not under meshwork/`);
  const text = Buffer.from(String(entry.value ?? ""), "base64").toString("utf8");
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    value = text;
  }
  live[entry.key.slice("meshwork/".length)] = value;
}
writeFileSync(`${target}.tmp`, `${JSON.stringify(live, null, 2)}\n`);
renameSync(`${target}.tmp`, target);
process.stdout.write(`live settings: ${Object.keys(live).length} keys written to ${target}\n`);
