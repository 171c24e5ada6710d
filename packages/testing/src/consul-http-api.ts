/**
 * A small HTTP server that answers the part of Consul's documented HTTP API
 * the Meshwork Consul adapters use. It is a simulation, NOT a Consul agent:
 * no agent can be installed on the machines these tests run on, and compose
 * runs the real one. What it reproduces, from Consul's API documentation:
 *
 * - PUT /v1/agent/service/register, PUT /v1/agent/service/deregister/:id
 *   (404 for an unknown id, as recent agents answer);
 * - GET /v1/health/service/:name with `passing` keeping only entries whose
 *   checks (node check included) all pass; a new check starts "critical"
 *   unless its definition sets Status, as Consul does;
 * - GET/PUT/DELETE /v1/kv/:key with base64 values, 404 for a missing key,
 *   `true` as the answer to a write;
 * - X-Consul-Index on every read (404s included), and blocking queries: a GET
 *   with ?index=N waits while the endpoint's index is <= N, until it changes
 *   or `wait` (Go duration, default 5m, capped at 10m) elapses;
 * - the ACL token from X-Consul-Token, "Authorization: Bearer" or ?token=.
 *   Two modes: `token` (one shared secret, 403 when absent or wrong: the
 *   old, coarse check), or `acl`, Consul's ACL system as documented
 *   (consul-acl.ts): tokens linked to policies, default policy deny, the
 *   anonymous token for requests without one, 403 "ACL not found" for an
 *   unknown secret and "Permission denied: token with AccessorID '...'
 *   lacks permission 'key:read' on \"...\"" for a missing permission;
 *   /v1/health/service filters out what the token may not read (service
 *   read on the service, node read on the node) and says so with
 *   X-Consul-Results-Filtered-By-ACLs, as Consul does rather than 403;
 *   PUT /v1/acl/bootstrap, /v1/acl/policy (create, read by name, update),
 *   /v1/acl/token (create with a caller-chosen AccessorID/SecretID, read,
 *   update, delete) and PUT /v1/agent/token/:kind.
 *
 * What it does not do: run health checks (tests move them with
 * setCheckStatus), reap critical services after DeregisterCriticalServiceAfter,
 * add jitter to `wait`, or serve anything outside the routes above (those get
 * 400/404 rather than a silently wrong answer).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { AclRuleError, createAuthorizer, MANAGEMENT_AUTHORIZER, parseAclRules, type Access, type Authorizer, type ParsedRules, type Resource } from "./consul-acl.js";

export type CheckStatus = "passing" | "warning" | "critical";

export interface ConsulAclOptions {
  /** acl.default_policy: what a request no rule covers gets. Default "deny". */
  readonly defaultPolicy?: "allow" | "deny";
  /**
   * acl.tokens.initial_management: a management token that exists from the
   * start; Consul then counts ACLs as bootstrapped, so /v1/acl/bootstrap refuses.
   */
  readonly initialManagementToken?: string;
}

export interface ConsulHttpApiOptions {
  /** When set, every request must carry this one token (no rules). Exclusive with `acl`. */
  readonly token?: string;
  /** When set, Consul's ACL system is enforced (see consul-acl.ts). */
  readonly acl?: ConsulAclOptions;
  /** Name and address of the simulated node every service is registered on. */
  readonly nodeName?: string;
  readonly nodeAddress?: string;
}

/** One request as the server saw it. */
export interface RecordedRequest {
  readonly method: string;
  /** Decoded path, e.g. "/v1/kv/meshwork/payments/decline-rate". */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** Response status; undefined while the request is still blocked. */
  readonly status: number | undefined;
}

/** A service registration as received (Consul field names), plus check states. */
export interface StoredRegistration {
  readonly body: Readonly<Record<string, unknown>>;
  readonly checks: readonly StoredCheck[];
}

export interface StoredCheck {
  readonly CheckID: string;
  readonly Name: string;
  readonly Status: CheckStatus;
  readonly Type: string;
  /** The check definition exactly as it was registered. */
  readonly Definition: Readonly<Record<string, unknown>>;
}

export interface ConsulHttpApi {
  readonly host: string;
  /** The listening port; 0 before the first start(). */
  readonly port: number;
  /** Listens on 127.0.0.1 (a fresh port the first time, the same one after stop()). */
  start(): Promise<void>;
  /** Stops listening and drops open connections, keeping all state. */
  stop(): Promise<void>;
  /** Test control: what the agent's gRPC probe would have concluded. */
  setCheckStatus(serviceId: string, status: CheckStatus): void;
  registration(serviceId: string): StoredRegistration | undefined;
  /** Test controls equivalent to PUT / DELETE /v1/kv/:key. */
  putKey(key: string, value: string): void;
  deleteKey(key: string): void;
  /**
   * The next `times` requests to `path` answer `status` with a text body.
   * Resolves once all of them have been answered.
   */
  failNext(path: string, times: number, status?: number): Promise<void>;
  requestCount(path: string): number;
  requests(path?: string): readonly RecordedRequest[];
  /** Resolves with the next request to `path` (matching `predicate`) when it arrives. */
  nextRequest(path: string, predicate?: (request: RecordedRequest) => boolean): Promise<RecordedRequest>;
  /** The current Raft index: every write moves it. */
  index(): number;
  /** The token set with PUT /v1/agent/token/:kind (e.g. "agent"), if any. */
  agentToken(kind: string): string | undefined;
}

interface AclPolicy {
  readonly ID: string;
  readonly Name: string;
  readonly Description: string;
  readonly Rules: string;
  readonly parsed: ParsedRules;
  readonly CreateIndex: number;
  readonly ModifyIndex: number;
}

interface AclToken {
  readonly AccessorID: string;
  readonly SecretID: string;
  readonly Description: string;
  readonly policyIds: string[];
  readonly Local: boolean;
  readonly CreateIndex: number;
  readonly ModifyIndex: number;
}

/** The token a request carries, resolved. */
interface Caller {
  readonly accessor: string;
  readonly authorizer: Authorizer;
}

interface Check {
  readonly CheckID: string;
  readonly Name: string;
  Status: CheckStatus;
  readonly Type: string;
  readonly Definition: Record<string, unknown>;
}

interface Service {
  readonly ID: string;
  readonly Service: string;
  readonly Address: string;
  readonly Port: number;
  readonly Tags: string[];
  readonly Meta: Record<string, string>;
  readonly body: Record<string, unknown>;
  readonly checks: Check[];
}

interface KvEntry {
  readonly value: Buffer;
  readonly flags: number;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

interface Failure {
  remaining: number;
  readonly status: number;
  readonly served: () => void;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const DEFAULT_WAIT_MS = 5 * 60_000;
const MAX_WAIT_MS = 10 * 60_000;
const DURATION_UNITS_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Parses a Go duration ("100ms", "1m30s"); undefined when it is not one. */
function parseGoDuration(text: string): number | undefined {
  if (text === "0") return 0;
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = part.exec(text); match !== null; match = part.exec(text)) {
    const unit = DURATION_UNITS_MS[match[2] ?? ""];
    if (unit === undefined) return undefined;
    total += Number(match[1]) * unit;
    consumed = part.lastIndex;
  }
  return consumed === text.length && text.length > 0 ? total : undefined;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringField(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  return typeof value === "string" ? value : undefined;
}

const UNSIMULATED_KV_PARAMS = ["recurse", "keys", "separator", "cas", "acquire", "release"];

export function createConsulHttpApi(options: ConsulHttpApiOptions = {}): ConsulHttpApi {
  const nodeName = options.nodeName ?? "simulated-node";
  const nodeAddress = options.nodeAddress ?? "127.0.0.1";

  // Consul's Raft index: one counter for every write, never 0.
  let raftIndex = 1;
  const services = new Map<string, Service>();
  // Per-endpoint index, as Consul tracks it so that a blocking query on one
  // service is not woken by writes to another.
  const serviceIndex = new Map<string, number>();
  const kv = new Map<string, KvEntry>();
  const kvIndex = new Map<string, number>();

  const recorded: (RecordedRequest & { status: number | undefined })[] = [];
  const failures = new Map<string, Failure[]>();
  const waiters = new Set<() => void>();
  const arrivals = new Set<(request: RecordedRequest) => void>();

  let port = 0;
  let listening = false;

  // --- ACL system (only when options.acl is set) ---------------------------
  if (options.acl !== undefined && options.token !== undefined) throw new Error("createConsulHttpApi: give `token` or `acl`, not both");
  const aclEnabled = options.acl !== undefined;
  const defaultPolicy = options.acl?.defaultPolicy ?? "deny";
  // Consul's built-in IDs.
  const GLOBAL_MANAGEMENT_ID = "00000000-0000-0000-0000-000000000001";
  const ANONYMOUS_ACCESSOR = "00000000-0000-0000-0000-000000000002";
  const policies = new Map<string, AclPolicy>();
  const tokens = new Map<string, AclToken>();
  const agentTokens = new Map<string, string>();
  let bootstrapped = false;
  policies.set(GLOBAL_MANAGEMENT_ID, {
    ID: GLOBAL_MANAGEMENT_ID,
    Name: "global-management",
    Description: "Builtin Policy that grants unlimited access",
    Rules: "",
    parsed: { segments: [], global: {} },
    CreateIndex: 1,
    ModifyIndex: 1,
  });
  // The anonymous token has no policies: with default deny it may do nothing.
  tokens.set(ANONYMOUS_ACCESSOR, { AccessorID: ANONYMOUS_ACCESSOR, SecretID: "anonymous", Description: "Anonymous Token", policyIds: [], Local: false, CreateIndex: 1, ModifyIndex: 1 });
  if (options.acl?.initialManagementToken !== undefined) {
    addToken({ SecretID: options.acl.initialManagementToken, Description: "Initial Management Token", policyIds: [GLOBAL_MANAGEMENT_ID] });
    bootstrapped = true;
  }

  function addToken(fields: { AccessorID?: string; SecretID?: string; Description: string; policyIds: string[]; Local?: boolean }): AclToken {
    const index = bump();
    const token: AclToken = {
      AccessorID: fields.AccessorID ?? randomUUID(),
      SecretID: fields.SecretID ?? randomUUID(),
      Description: fields.Description,
      policyIds: fields.policyIds,
      Local: fields.Local ?? false,
      CreateIndex: index,
      ModifyIndex: index,
    };
    tokens.set(token.AccessorID, token);
    return token;
  }

  function tokenBySecret(secret: string): AclToken | undefined {
    for (const token of tokens.values()) if (token.SecretID === secret) return token;
    return undefined;
  }

  function authorizerOf(token: AclToken): Authorizer {
    if (token.policyIds.includes(GLOBAL_MANAGEMENT_ID)) return MANAGEMENT_AUTHORIZER;
    // A link to a deleted policy is ignored, as Consul does.
    const parsed = token.policyIds.flatMap((id) => {
      const policy = policies.get(id);
      return policy === undefined ? [] : [policy.parsed];
    });
    return createAuthorizer(parsed, defaultPolicy);
  }

  /** Who is asking: the anonymous token without a secret; 403 "ACL not found" for an unknown one. */
  function caller(req: IncomingMessage, query: URLSearchParams): Caller {
    if (!aclEnabled) return { accessor: "", authorizer: MANAGEMENT_AUTHORIZER };
    const secret = tokenOf(req, query);
    const token = secret === undefined ? tokens.get(ANONYMOUS_ACCESSOR) : tokenBySecret(secret);
    if (token === undefined) throw new HttpError(403, "ACL not found");
    return { accessor: token.AccessorID, authorizer: authorizerOf(token) };
  }

  /** Throws Consul's 403 when the caller lacks `resource:access` on `name`. */
  function requirePermission(who: Caller, resource: Resource, access: Access, name = ""): void {
    if (who.authorizer.allows(resource, name, access)) return;
    // Consul quotes the name as is, without escaping.
    const on = name === "" && (resource === "acl" || resource === "operator" || resource === "keyring" || resource === "mesh" || resource === "peering") ? "" : ` on "${name}"`;
    throw new HttpError(403, `Permission denied: token with AccessorID '${who.accessor}' lacks permission '${resource}:${access}'${on}`);
  }

  function policyJson(policy: AclPolicy): unknown {
    return { ID: policy.ID, Name: policy.Name, Description: policy.Description, Rules: policy.Rules, Datacenters: null, CreateIndex: policy.CreateIndex, ModifyIndex: policy.ModifyIndex };
  }

  function tokenJson(token: AclToken, showSecret: boolean): unknown {
    return {
      AccessorID: token.AccessorID,
      SecretID: showSecret ? token.SecretID : "<hidden>",
      Description: token.Description,
      Policies: token.policyIds.map((id) => ({ ID: id, Name: policies.get(id)?.Name ?? "" })),
      Local: token.Local,
      CreateIndex: token.CreateIndex,
      ModifyIndex: token.ModifyIndex,
    };
  }

  // Reading a policy or token that does not exist answers 403 "ACL not found",
  // not 404 (hashicorp/consul issues 8428 and 9933 show it; the handler's
  // own comment asks whether it should be a 404). Clients must accept both.
  const ACL_READ_MISSING = "ACL not found";
  const POLICY_NAME = /^[A-Za-z0-9\-_]{1,128}$/;
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  function parsePolicyBody(body: unknown, existing: AclPolicy | undefined): AclPolicy {
    if (!isRecord(body)) throw new HttpError(400, "Request decode failed: not an object");
    const name = stringField(body, "Name") ?? "";
    if (!POLICY_NAME.test(name)) throw new HttpError(400, `Invalid Policy: invalid Name "${name}"`);
    const rules = stringField(body, "Rules") ?? "";
    let parsed: ParsedRules;
    try {
      parsed = parseAclRules(rules);
    } catch (error) {
      if (error instanceof AclRuleError) throw new HttpError(400, `Invalid Policy: failed to parse rules: ${error.message}`);
      throw error;
    }
    for (const policy of policies.values()) {
      if (policy.Name === name && policy.ID !== existing?.ID) throw new HttpError(400, `Invalid Policy: A Policy with Name "${name}" already exists`);
    }
    const index = bump();
    return {
      ID: existing?.ID ?? randomUUID(),
      Name: name,
      Description: stringField(body, "Description") ?? "",
      Rules: rules,
      parsed,
      CreateIndex: existing?.CreateIndex ?? index,
      ModifyIndex: index,
    };
  }

  /** Policy links as the token API takes them: { ID } or { Name }. */
  function policyLinks(body: Record<string, unknown>): string[] {
    const links = body.Policies ?? [];
    if (!Array.isArray(links)) throw new HttpError(400, "Invalid Token: Policies must be a list");
    return links.map((link) => {
      if (!isRecord(link)) throw new HttpError(400, "Invalid Token: a policy link must be an object");
      const id = stringField(link, "ID");
      const name = stringField(link, "Name");
      const policy = id !== undefined && id !== "" ? policies.get(id) : [...policies.values()].find((candidate) => candidate.Name === name);
      if (policy === undefined) throw new HttpError(400, `Invalid Token: No such ACL policy with ${id ? `ID "${id}"` : `name "${name ?? ""}"`}`);
      return policy.ID;
    });
  }

  async function readJson(req: IncomingMessage): Promise<unknown> {
    const raw = await readBody(req);
    if (raw.length === 0) return {};
    try {
      return JSON.parse(raw.toString("utf8"));
    } catch {
      throw new HttpError(400, "Request decode failed: invalid JSON");
    }
  }

  /** The /v1/acl/... routes; true when `path` was one of them. */
  async function aclRoute(req: IncomingMessage, res: ServerResponse, method: string, path: string, who: Caller): Promise<boolean> {
    if (!path.startsWith("/v1/acl/")) return false;
    if (!aclEnabled) throw new HttpError(401, "ACL support disabled");

    if (path === "/v1/acl/bootstrap") {
      if (method !== "PUT") throw new HttpError(405, "method not allowed");
      if (bootstrapped) throw new HttpError(403, `Permission denied: ACL bootstrap no longer allowed (reset index: ${raftIndex})`);
      const body = await readJson(req);
      const secret = isRecord(body) ? stringField(body, "BootstrapSecret") : undefined;
      if (secret !== undefined && !UUID.test(secret)) throw new HttpError(400, "BootstrapSecret: invalid UUID");
      bootstrapped = true;
      const token = addToken({ ...(secret === undefined ? {} : { SecretID: secret }), Description: "Bootstrap Token (Global Management)", policyIds: [GLOBAL_MANAGEMENT_ID] });
      sendJson(res, 200, tokenJson(token, true));
      return true;
    }

    if (path === "/v1/acl/policy") {
      if (method !== "PUT") throw new HttpError(405, "method not allowed");
      requirePermission(who, "acl", "write");
      const policy = parsePolicyBody(await readJson(req), undefined);
      policies.set(policy.ID, policy);
      sendJson(res, 200, policyJson(policy));
      return true;
    }

    const policyName = /^\/v1\/acl\/policy\/name\/(.+)$/.exec(path)?.[1];
    if (policyName !== undefined) {
      if (method !== "GET") throw new HttpError(405, "method not allowed");
      requirePermission(who, "acl", "read");
      const policy = [...policies.values()].find((candidate) => candidate.Name === policyName);
      if (policy === undefined) throw new HttpError(403, ACL_READ_MISSING);
      sendJson(res, 200, policyJson(policy));
      return true;
    }

    const policyId = /^\/v1\/acl\/policy\/([^/]+)$/.exec(path)?.[1];
    if (policyId !== undefined) {
      const existing = policies.get(policyId);
      if (method === "GET") {
        requirePermission(who, "acl", "read");
        if (existing === undefined) throw new HttpError(403, ACL_READ_MISSING);
        sendJson(res, 200, policyJson(existing));
        return true;
      }
      if (method !== "PUT") throw new HttpError(405, "method not allowed");
      requirePermission(who, "acl", "write");
      if (existing === undefined) throw new HttpError(400, `Invalid Policy: Cannot find policy ${policyId}`);
      if (policyId === GLOBAL_MANAGEMENT_ID) throw new HttpError(400, "Invalid Policy: Changing the Rules for the builtin global-management policy is not permitted");
      const updated = parsePolicyBody(await readJson(req), existing);
      policies.set(policyId, updated);
      sendJson(res, 200, policyJson(updated));
      return true;
    }

    if (path === "/v1/acl/token") {
      if (method !== "PUT") throw new HttpError(405, "method not allowed");
      requirePermission(who, "acl", "write");
      const body = await readJson(req);
      if (!isRecord(body)) throw new HttpError(400, "Request decode failed: not an object");
      const accessor = stringField(body, "AccessorID") || undefined;
      const secret = stringField(body, "SecretID") || undefined;
      if (accessor !== undefined && !UUID.test(accessor)) throw new HttpError(400, "Invalid Token: AccessorID is not a valid UUID");
      if (secret !== undefined && !UUID.test(secret)) throw new HttpError(400, "Invalid Token: SecretID is not a valid UUID");
      if (accessor !== undefined && tokens.has(accessor)) throw new HttpError(400, "Invalid Token: AccessorID is already in use");
      if (secret !== undefined && tokenBySecret(secret) !== undefined) throw new HttpError(400, "Invalid Token: SecretID is already in use");
      const token = addToken({
        ...(accessor === undefined ? {} : { AccessorID: accessor }),
        ...(secret === undefined ? {} : { SecretID: secret }),
        Description: stringField(body, "Description") ?? "",
        policyIds: policyLinks(body),
        Local: body.Local === true,
      });
      sendJson(res, 200, tokenJson(token, true));
      return true;
    }

    if (path === "/v1/acl/token/self") {
      // Any valid token may read itself; the secret comes back as sent.
      if (method !== "GET") throw new HttpError(405, "method not allowed");
      const self = tokens.get(who.accessor);
      if (self === undefined || who.accessor === ANONYMOUS_ACCESSOR) throw new HttpError(403, "ACL not found");
      sendJson(res, 200, tokenJson(self, true));
      return true;
    }

    const accessor = /^\/v1\/acl\/token\/([^/]+)$/.exec(path)?.[1];
    if (accessor !== undefined) {
      const existing = tokens.get(accessor);
      if (method === "GET") {
        const asker = who;
        requirePermission(asker, "acl", "read");
        if (existing === undefined) throw new HttpError(403, ACL_READ_MISSING);
        sendJson(res, 200, tokenJson(existing, asker.authorizer.allows("acl", "", "write")));
        return true;
      }
      if (method === "DELETE") {
        requirePermission(who, "acl", "write");
        if (accessor === ANONYMOUS_ACCESSOR) throw new HttpError(400, "Delete operation not permitted on the anonymous token");
        if (tokens.delete(accessor)) bump();
        sendJson(res, 200, true);
        return true;
      }
      if (method !== "PUT") throw new HttpError(405, "method not allowed");
      requirePermission(who, "acl", "write");
      if (existing === undefined) throw new HttpError(400, `Invalid Token: Cannot find token ${accessor}`);
      const body = await readJson(req);
      if (!isRecord(body)) throw new HttpError(400, "Request decode failed: not an object");
      const secret = stringField(body, "SecretID");
      if (secret !== undefined && secret !== "" && secret !== existing.SecretID) throw new HttpError(400, "Invalid Token: Changing a token's SecretID is not permitted");
      const updated: AclToken = { ...existing, Description: stringField(body, "Description") ?? existing.Description, policyIds: policyLinks(body), ModifyIndex: bump() };
      tokens.set(accessor, updated);
      sendJson(res, 200, tokenJson(updated, true));
      return true;
    }

    throw new HttpError(404, `not simulated: ${method} ${path}`);
  }

  function bump(): number {
    raftIndex += 1;
    return raftIndex;
  }

  function wakeBlocked(): void {
    for (const wake of [...waiters]) wake();
  }

  function touchService(name: string): void {
    serviceIndex.set(name, bump());
    wakeBlocked();
  }

  function touchKey(key: string): void {
    kvIndex.set(key, bump());
    wakeBlocked();
  }

  function putKey(key: string, value: Buffer, flags: number): void {
    const existing = kv.get(key);
    touchKey(key);
    const index = kvIndex.get(key) ?? raftIndex;
    kv.set(key, {
      value,
      flags,
      createIndex: existing?.createIndex ?? index,
      modifyIndex: index,
    });
  }

  function deleteKey(key: string): void {
    if (!kv.delete(key)) return;
    touchKey(key);
  }

  function tokenOf(req: IncomingMessage, query: URLSearchParams): string | undefined {
    const header = req.headers["x-consul-token"];
    if (typeof header === "string" && header !== "") return header;
    const authorization = req.headers.authorization;
    if (authorization?.startsWith("Bearer ")) return authorization.slice("Bearer ".length);
    return query.get("token") ?? undefined;
  }

  /** Waits, as a blocking query does, while `current()` <= the requested index. */
  function block(res: ServerResponse, query: URLSearchParams, current: () => number): Promise<void> {
    const indexText = query.get("index");
    if (indexText === null) return Promise.resolve();
    if (!/^\d+$/.test(indexText)) throw new HttpError(400, "Invalid index");
    const wanted = Number(indexText);
    if (wanted === 0 || current() > wanted) return Promise.resolve();
    const waitText = query.get("wait");
    let waitMs = DEFAULT_WAIT_MS;
    if (waitText !== null) {
      const parsed = parseGoDuration(waitText);
      if (parsed === undefined) throw new HttpError(400, "Invalid wait time");
      waitMs = Math.min(parsed, MAX_WAIT_MS);
    }
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
        res.off("close", finish);
        resolve();
      };
      const check = (): void => {
        if (current() > wanted) finish();
      };
      const timer = setTimeout(finish, waitMs);
      waiters.add(check);
      // A client that gives up (timeout, watch ended), or stop() dropping the
      // connection, must not leave a waiter and its timer behind.
      res.on("close", finish);
    });
  }

  function send(res: ServerResponse, status: number, body: string | Buffer, headers: Record<string, string> = {}): void {
    if (res.writableEnded || res.destroyed || res.socket === null || res.socket.destroyed) return;
    res.writeHead(status, { "Content-Length": Buffer.byteLength(body), ...headers });
    res.end(body);
  }

  function sendJson(res: ServerResponse, status: number, value: unknown, index?: number): void {
    const headers: Record<string, string> = { "Content-Type": "application/json" };
    if (index !== undefined) {
      headers["X-Consul-Index"] = String(index);
      headers["X-Consul-KnownLeader"] = "true";
      headers["X-Consul-LastContact"] = "0";
    }
    send(res, status, JSON.stringify(value), headers);
  }

  function sendText(res: ServerResponse, status: number, text: string, index?: number): void {
    const headers: Record<string, string> = { "Content-Type": "text/plain; charset=utf-8" };
    if (index !== undefined) headers["X-Consul-Index"] = String(index);
    send(res, status, text, headers);
  }

  function parseCheck(service: Omit<Service, "checks">, definition: unknown, position: number, count: number): Check {
    if (!isRecord(definition)) throw new HttpError(400, "Invalid check: not an object");
    const type = ["GRPC", "HTTP", "TCP", "UDP", "H2PING", "TTL", "Args"].find((field) => field in definition);
    if (type === undefined) throw new HttpError(400, "Invalid check: no check type");
    if (type !== "TTL" && stringField(definition, "Interval") === undefined) {
      throw new HttpError(400, `Invalid check: ${type} check requires Interval`);
    }
    for (const field of ["Interval", "Timeout", "DeregisterCriticalServiceAfter", "TTL"]) {
      const value = definition[field];
      if (value !== undefined && (typeof value !== "string" || parseGoDuration(value) === undefined)) {
        throw new HttpError(400, `Invalid check: ${field} is not a duration`);
      }
    }
    const status = stringField(definition, "Status");
    if (status !== undefined && status !== "passing" && status !== "warning" && status !== "critical") {
      throw new HttpError(400, `Invalid check status "${status}"`);
    }
    return {
      CheckID: count === 1 ? `service:${service.ID}` : `service:${service.ID}:${position + 1}`,
      Name: stringField(definition, "Name") ?? `Service '${service.Service}' check`,
      Status: status ?? "critical",
      Type: type.toLowerCase(),
      Definition: definition,
    };
  }

  function register(body: unknown, who: Caller): void {
    if (!isRecord(body)) throw new HttpError(400, "Request decode failed: not an object");
    const name = stringField(body, "Name");
    if (name === undefined || name === "") throw new HttpError(400, "Missing service name");
    const port = body.Port ?? 0;
    if (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65535) {
      throw new HttpError(400, "Invalid service port");
    }
    const tags = body.Tags ?? [];
    if (!Array.isArray(tags) || !tags.every((tag) => typeof tag === "string")) {
      throw new HttpError(400, "Invalid service tags");
    }
    const meta = isRecord(body.Meta) ? (body.Meta as Record<string, string>) : {};
    const base = {
      ID: stringField(body, "ID") || name,
      Service: name,
      Address: stringField(body, "Address") ?? "",
      Port: port,
      Tags: tags as string[],
      Meta: meta,
      body,
    };
    // service:write on the name, and on the service an existing ID belongs
    // to, so a token cannot take over another service's instance by its ID.
    requirePermission(who, "service", "write", name);
    const overwritten = services.get(base.ID);
    if (overwritten !== undefined && overwritten.Service !== name) requirePermission(who, "service", "write", overwritten.Service);
    const definitions: unknown[] = Array.isArray(body.Checks) ? body.Checks : body.Check !== undefined ? [body.Check] : [];
    const checks = definitions.map((definition, position) => parseCheck(base, definition, position, definitions.length));
    const previous = services.get(base.ID);
    services.set(base.ID, { ...base, checks });
    if (previous !== undefined && previous.Service !== name) touchService(previous.Service);
    touchService(name);
  }

  function healthEntries(name: string, passingOnly: boolean): unknown[] {
    const nodeCheck = {
      Node: nodeName,
      CheckID: "serfHealth",
      Name: "Serf Health Status",
      Status: "passing",
      Notes: "",
      Output: "Agent alive and reachable",
      ServiceID: "",
      ServiceName: "",
      ServiceTags: [],
      Type: "",
    };
    return [...services.values()]
      .filter((service) => service.Service === name)
      .filter((service) => !passingOnly || service.checks.every((check) => check.Status === "passing"))
      .map((service) => ({
        Node: { ID: "", Node: nodeName, Address: nodeAddress, Datacenter: "dc1" },
        Service: {
          ID: service.ID,
          Service: service.Service,
          Tags: service.Tags,
          Address: service.Address,
          Meta: service.Meta,
          Port: service.Port,
        },
        Checks: [
          nodeCheck,
          ...service.checks.map((check) => ({
            Node: nodeName,
            CheckID: check.CheckID,
            Name: check.Name,
            Status: check.Status,
            Notes: "",
            Output: "",
            ServiceID: service.ID,
            ServiceName: service.Service,
            ServiceTags: service.Tags,
            Type: check.Type,
          })),
        ],
      }));
  }

  function kvJson(key: string, entry: KvEntry): unknown {
    return {
      Key: key,
      // Consul answers null, not "", for an empty value.
      Value: entry.value.length === 0 ? null : entry.value.toString("base64"),
      Flags: entry.flags,
      CreateIndex: entry.createIndex,
      ModifyIndex: entry.modifyIndex,
      LockIndex: 0,
    };
  }

  async function route(req: IncomingMessage, res: ServerResponse, method: string, path: string, query: URLSearchParams, who: Caller): Promise<void> {
    if (await aclRoute(req, res, method, path, who)) return;

    if (path === "/v1/status/leader") {
      // Needs no token in Consul: deploy scripts wait on it.
      if (method !== "GET") throw new HttpError(405, "method not allowed");
      sendJson(res, 200, `${nodeAddress}:8300`);
      return;
    }

    const serviceName = /^\/v1\/health\/service\/(.+)$/.exec(path)?.[1];
    if (serviceName !== undefined) {
      if (method !== "GET") throw new HttpError(405, "method not allowed");
      const current = (): number => serviceIndex.get(serviceName) ?? 1;
      await block(res, query, current);
      const passing = query.has("passing") && !["false", "0"].includes(query.get("passing") ?? "");
      // Consul filters what the token may not read instead of refusing:
      // the service needs service:read, each entry's node node:read.
      const all = healthEntries(serviceName, passing);
      const visible = who.authorizer.allows("service", serviceName, "read") && who.authorizer.allows("node", nodeName, "read") ? all : [];
      if (visible.length < all.length) {
        send(res, 200, JSON.stringify(visible), {
          "Content-Type": "application/json",
          "X-Consul-Index": String(current()),
          "X-Consul-KnownLeader": "true",
          "X-Consul-LastContact": "0",
          "X-Consul-Results-Filtered-By-ACLs": "true",
        });
      } else {
        sendJson(res, 200, all, current());
      }
      return;
    }

    if (path === "/v1/agent/service/register") {
      if (method !== "PUT") throw new HttpError(405, "method not allowed");
      const raw = await readBody(req);
      let body: unknown;
      try {
        body = JSON.parse(raw.toString("utf8"));
      } catch {
        throw new HttpError(400, "Request decode failed: invalid JSON");
      }
      register(body, who);
      send(res, 200, "");
      return;
    }

    const deregisterId = /^\/v1\/agent\/service\/deregister\/(.+)$/.exec(path)?.[1];
    if (deregisterId !== undefined) {
      if (method !== "PUT") throw new HttpError(405, "method not allowed");
      const service = services.get(deregisterId);
      if (service === undefined) throw new HttpError(404, `Unknown service ID "${deregisterId}"`);
      requirePermission(who, "service", "write", service.Service);
      services.delete(deregisterId);
      touchService(service.Service);
      send(res, 200, "");
      return;
    }

    const agentTokenKind = /^\/v1\/agent\/token\/([a-z_-]+)$/.exec(path)?.[1];
    if (agentTokenKind !== undefined) {
      if (method !== "PUT") throw new HttpError(405, "method not allowed");
      if (!aclEnabled) throw new HttpError(401, "ACL support disabled");
      requirePermission(who, "agent", "write", nodeName);
      const body = await readJson(req);
      const token = isRecord(body) ? stringField(body, "Token") : undefined;
      if (token === undefined) throw new HttpError(400, "Request decode failed: Token missing");
      agentTokens.set(agentTokenKind, token);
      send(res, 200, "");
      return;
    }

    const key = /^\/v1\/kv\/(.+)$/.exec(path)?.[1];
    if (key !== undefined) {
      const unsimulated = UNSIMULATED_KV_PARAMS.find((param) => query.has(param));
      if (unsimulated !== undefined) throw new HttpError(400, `?${unsimulated} is not simulated`);
      requirePermission(who, "key", method === "GET" ? "read" : "write", key);
      if (method === "GET") {
        const current = (): number => kvIndex.get(key) ?? 1;
        await block(res, query, current);
        const entry = kv.get(key);
        if (entry === undefined) {
          sendText(res, 404, "", current());
        } else if (query.has("raw")) {
          send(res, 200, entry.value, { "X-Consul-Index": String(current()) });
        } else {
          sendJson(res, 200, [kvJson(key, entry)], current());
        }
        return;
      }
      if (method === "PUT") {
        const flagsText = query.get("flags") ?? "0";
        if (!/^\d+$/.test(flagsText)) throw new HttpError(400, "Invalid flags");
        putKey(key, await readBody(req), Number(flagsText));
        sendJson(res, 200, true);
        return;
      }
      if (method === "DELETE") {
        deleteKey(key);
        sendJson(res, 200, true);
        return;
      }
      throw new HttpError(405, "method not allowed");
    }

    throw new HttpError(404, `not simulated: ${method} ${path}`);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://consul.invalid");
    // Keys arrive percent-encoded ("/" as %2F); Consul decodes the whole path.
    const path = decodeURIComponent(url.pathname);
    const method = req.method ?? "GET";
    const query: Record<string, string> = {};
    for (const [name, value] of url.searchParams) query[name] = value;
    const record: RecordedRequest & { status: number | undefined } = {
      method,
      path,
      query,
      status: undefined,
    };
    recorded.push(record);
    for (const arrival of [...arrivals]) arrival(record);
    res.on("finish", () => {
      record.status = res.statusCode;
    });

    const failure = failures.get(path)?.[0];
    if (failure !== undefined) {
      failure.remaining -= 1;
      if (failure.remaining === 0) {
        failures.get(path)?.shift();
        res.on("finish", failure.served);
      }
      sendText(res, failure.status, "simulated failure");
      return;
    }

    if (options.token !== undefined && tokenOf(req, url.searchParams) !== options.token) {
      sendText(res, 403, "Permission denied");
      return;
    }

    try {
      // Consul resolves no token for these: bootstrap is how the first token is
      // made, and the status endpoints answer anyone (a stale token in the header is ignored).
      const tokenless = path === "/v1/acl/bootstrap" || path.startsWith("/v1/status/");
      await route(req, res, method, path, url.searchParams, tokenless ? { accessor: "", authorizer: { allows: () => false } } : caller(req, url.searchParams));
    } catch (error) {
      if (error instanceof HttpError) {
        sendText(res, error.status, error.message);
      } else {
        sendText(res, 500, error instanceof Error ? error.message : String(error));
      }
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      sendText(res, 500, error instanceof Error ? error.message : String(error));
    });
  });

  function findService(serviceId: string): Service {
    const service = services.get(serviceId);
    if (service === undefined) throw new Error(`no service registered with id "${serviceId}"`);
    return service;
  }

  return {
    host: "127.0.0.1",
    get port() {
      return port;
    },
    start() {
      if (listening) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, "127.0.0.1", () => {
          server.off("error", reject);
          port = (server.address() as AddressInfo).port;
          listening = true;
          resolve();
        });
      });
    },
    stop() {
      if (!listening) return Promise.resolve();
      listening = false;
      return new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        server.closeAllConnections();
      });
    },
    setCheckStatus(serviceId, status) {
      const service = findService(serviceId);
      if (service.checks.length === 0) throw new Error(`service "${serviceId}" has no checks`);
      let changed = false;
      for (const check of service.checks) {
        changed ||= check.Status !== status;
        check.Status = status;
      }
      if (changed) touchService(service.Service);
    },
    registration(serviceId) {
      const service = services.get(serviceId);
      if (service === undefined) return undefined;
      return {
        body: service.body,
        checks: service.checks.map((check) => ({ ...check })),
      };
    },
    putKey(key, value) {
      putKey(key, Buffer.from(value, "utf8"), 0);
    },
    deleteKey,
    failNext(path, times, status = 500) {
      if (!Number.isInteger(times) || times < 1) throw new Error("failNext needs times >= 1");
      return new Promise<void>((resolve) => {
        const queue = failures.get(path) ?? [];
        queue.push({ remaining: times, status, served: resolve });
        failures.set(path, queue);
      });
    },
    requestCount(path) {
      return recorded.filter((request) => request.path === path).length;
    },
    requests(path) {
      return recorded.filter((request) => path === undefined || request.path === path).map((request) => ({ ...request }));
    },
    nextRequest(path, predicate = () => true) {
      return new Promise((resolve) => {
        const arrival = (request: RecordedRequest): void => {
          if (request.path !== path || !predicate(request)) return;
          arrivals.delete(arrival);
          resolve(request);
        };
        arrivals.add(arrival);
      });
    },
    index: () => raftIndex,
    agentToken: (kind) => agentTokens.get(kind),
  };
}

/**
 * Test helper: creates a policy with `rules` and a token linked to it through
 * the simulated API's own /v1/acl endpoints, with the management token.
 * Answers the token's SecretID (the one given, or Consul's).
 */
export async function grantConsulToken(options: { api: ConsulHttpApi; managementToken: string; name: string; rules: string; secretId?: string }): Promise<string> {
  const { api, managementToken, name, rules } = options;
  const call = async (route: string, body: unknown): Promise<Record<string, unknown>> => {
    const response = await fetch(`http://${api.host}:${api.port}${route}`, {
      method: "PUT",
      headers: { "X-Consul-Token": managementToken, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`PUT ${route}: ${response.status} ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  };
  await call("/v1/acl/policy", { Name: name, Rules: rules });
  const token = await call("/v1/acl/token", { Description: name, Policies: [{ Name: name }], ...(options.secretId === undefined ? {} : { SecretID: options.secretId }) });
  return String(token.SecretID);
}
