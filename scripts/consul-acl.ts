/**
 * `npm run consul:acl`: renders the Consul ACL policies (deploy/consul/acl-policies.ts,
 * from the call graph) to deploy/consul/acl.json, the file the compose bootstrap
 * loads. Run it after changing the call graph; a test fails while they differ.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { consulAclPlan } from "../deploy/consul/acl-policies.js";

const target = fileURLToPath(new URL("../deploy/consul/acl.json", import.meta.url));
writeFileSync(target, `${JSON.stringify(consulAclPlan(), null, 2)}\n`);
console.log(`wrote ${target}`);
