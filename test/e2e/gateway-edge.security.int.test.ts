/**
 * Issue 13, edge bounds, through the real gateway on port 0: the client
 * address from trusted proxy networks only (for the rate limit and for
 * backends), the per-user stream cap, streams ending with their token, and
 * MeshService, reflection and health Watch closed by default.
 *
 * Tokens are minted here with a key a stand-in identity publishes (GetJwks),
 * so a test can choose any lifetime; the gateway verifies them exactly as it
 * verifies identity's.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync, randomUUID, sign, type KeyObject } from "node:crypto";
import { beforeAll, describe, test } from "vitest";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { ServerReflection } from "@meshwork/contracts/grpc/reflection/v1/reflection";
import { Health, HealthCheckResponse_ServingStatus } from "@meshwork/contracts/health/v1/health";
import { MeshService } from "@meshwork/contracts/shop/gateway/v1/mesh";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { NotificationService } from "@meshwork/contracts/shop/notifications/v1/notifications";
import { Code as GrpcCode, createGrpcHost, createSilentLogger, RpcError } from "@meshwork/platform";
import { createSuiteScope, type TestScope } from "@meshwork/testing";
import { CLOSED_ADDRESS, connectClient, GENEROUS_LIMITS, nextEvent, startNotificationsStandIn, startTestGateway, transportsFor, type NotificationsStandIn, type SeenCall } from "./gateway-harness.js";

interface Issuer {
  readonly address: string;
  /** x-meshwork-client-address of each SignIn that reached the stand-in. */
  readonly signInsFrom: (string | undefined)[];
  /** A token for `userId` that expires `ttlMs` from now (exp is whole seconds, so rounded up). */
  mint(userId: string, ttlMs: number): { token: string; expiresAt: number };
}

/** A stand-in identity that publishes one ES256 key; tokens are signed with it here. */
async function startIssuer(t: TestScope): Promise<Issuer> {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const kid = `test-${randomUUID()}`;
  const jwk = publicKey.export({ format: "jwk" });
  const host = createGrpcHost({ name: "identity-stand-in", log: createSilentLogger() });
  const unimplemented = async (): Promise<never> => {
    throw new RpcError(GrpcCode.UNIMPLEMENTED, "not in this stand-in");
  };
  const signInsFrom: (string | undefined)[] = [];
  host.add(IdentityService, {
    signUp: unimplemented,
    async signIn(_request, context) {
      signInsFrom.push(context.metadata.get("x-meshwork-client-address").join(",") || undefined);
      throw new RpcError(GrpcCode.UNAUTHENTICATED, "email or password is wrong");
    },
    async getJwks() {
      return { keys: [{ kid, kty: "EC", crv: "P-256", x: jwk.x ?? "", y: jwk.y ?? "", alg: "ES256", use: "sig" }] };
    },
  });
  const port = await host.listen({ host: "127.0.0.1", port: 0 });
  host.setServing(true);
  t.onTestFinished(async () => {
    await host.shutdown(0);
  });
  return {
    address: `127.0.0.1:${port}`,
    signInsFrom,
    mint(userId, ttlMs) {
      const now = Date.now();
      const exp = Math.ceil((now + ttlMs) / 1000);
      const token = signJwt(
        privateKey,
        { alg: "ES256", typ: "at+jwt", kid },
        { iss: "meshwork-identity", aud: "meshwork", sub: userId, email: `${userId}@example.test`, iat: Math.floor(now / 1000), exp },
      );
      return { token, expiresAt: exp * 1000 };
    },
  };
}

function signJwt(key: KeyObject, header: object, payload: object): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString("base64url");
  const input = `${part(header)}.${part(payload)}`;
  // JWS wants the raw r||s signature (IEEE P1363), not DER.
  const signature = sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
  return `${input}.${signature.toString("base64url")}`;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Reads a stream until it ends; resolves with the error it ended with (or undefined) and the messages seen. */
async function drain(stream: AsyncIterable<unknown>): Promise<{ error: ConnectError | undefined; messages: number }> {
  let messages = 0;
  try {
    for await (const _ of stream) messages++;
    return { error: undefined, messages };
  } catch (error) {
    return { error: ConnectError.from(error), messages };
  }
}

describe("the gateway's edge bounds", { timeout: 60_000 }, () => {
  const scope = createSuiteScope("the gateway's edge bounds");
  let issuer: Issuer;
  let notifications: NotificationsStandIn;
  let backendEnv: Record<string, string>;
  let baseUrl: string;

  beforeAll(async () => {
    issuer = await startIssuer(scope);
    notifications = await startNotificationsStandIn(scope);
    backendEnv = {
      GATEWAY_IDENTITY_ADDR: issuer.address,
      GATEWAY_NOTIFICATIONS_ADDR: notifications.address,
      GATEWAY_CATALOG_ADDR: CLOSED_ADDRESS,
      GATEWAY_ORDERS_ADDR: CLOSED_ADDRESS,
      GATEWAY_PAYMENTS_ADDR: CLOSED_ADDRESS,
    };
    // Every exposure setting at its default.
    ({ baseUrl } = await startTestGateway(scope, { ...backendEnv, ...GENEROUS_LIMITS, GATEWAY_MAX_STREAMS_PER_USER: "2" }));
  }, 60_000);

  const watchClient = (): Client<typeof NotificationService> => connectClient(NotificationService, transportsFor(baseUrl)["gRPC over h2c"]);

  test("a stream ends with UNAUTHENTICATED when its token expires, and the backend's stream behind it is cancelled", async () => {
    const { token, expiresAt } = issuer.mint(`user-${randomUUID()}`, 1500);
    const started = nextEvent(notifications.events, "watch-started");
    const ended = nextEvent(notifications.events, "watch-ended", 15_000);
    const result = drain(watchClient().watchNotifications({}, { headers: bearer(token), signal: AbortSignal.timeout(8000) }));
    await started;
    notifications.push("still signed in");
    const { error, messages } = await result;
    assert.equal(error?.code, Code.Unauthenticated, String(error));
    assert.match(error.rawMessage, /token expired/);
    assert.equal(messages, 1, "messages flow until the token expires");
    assert.ok(Date.now() >= expiresAt - 50, `ended ${expiresAt - Date.now()} ms before the token expired`);
    await ended;
  });

  test("a user's streams beyond GATEWAY_MAX_STREAMS_PER_USER get RESOURCE_EXHAUSTED; other users are not affected, and a closed stream frees its place", async (t) => {
    const greedy = issuer.mint(`user-${randomUUID()}`, 600_000).token;
    const other = issuer.mint(`user-${randomUUID()}`, 600_000).token;
    const client = watchClient();
    const open = (token: string) => {
      const stop = new AbortController();
      t.onTestFinished(() => stop.abort());
      const result = drain(client.watchNotifications({}, { headers: bearer(token), signal: stop.signal }));
      return { stop, result };
    };
    const startedTwice = new Promise<void>((resolve) => {
      let count = 0;
      const onStart = (): void => {
        if (++count < 2) return;
        notifications.events.off("watch-started", onStart);
        resolve();
      };
      notifications.events.on("watch-started", onStart);
    });
    const first = open(greedy);
    open(greedy);
    await startedTwice;

    const third = await open(greedy).result;
    assert.equal(third.error?.code, Code.ResourceExhausted, String(third.error));
    assert.match(third.error.rawMessage, /too many open streams/);

    const othersStarted = nextEvent(notifications.events, "watch-started");
    open(other);
    await othersStarted;

    const freed = nextEvent(notifications.events, "watch-ended");
    first.stop.abort();
    await first.result;
    await freed;
    const againStarted = nextEvent(notifications.events, "watch-started");
    open(greedy);
    await againStarted;
  });

  test("an untrusted peer's X-Forwarded-For and x-meshwork-client-address are ignored: the backend is told the TCP peer", async () => {
    const client = connectClient(NotificationService, transportsFor(baseUrl)["Connect JSON over HTTP/1.1"]);
    const seen = nextEvent<SeenCall>(notifications.events, "call");
    await client.listNotifications({ pageSize: 1 }, { headers: { ...bearer(issuer.mint("u-spoof", 60_000).token), "x-forwarded-for": "198.51.100.1", "x-meshwork-client-address": "6.6.6.6" } });
    assert.equal((await seen).clientAddress, "127.0.0.1");
  });

  test("behind trusted proxy networks the client is the first untrusted hop from the right, for the backend and for the per-address limit", async (t) => {
    const { baseUrl: proxied } = await startTestGateway(t, {
      ...backendEnv,
      ...GENEROUS_LIMITS,
      GATEWAY_TRUSTED_PROXIES: "127.0.0.0/8, 10.0.0.0/8",
      MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_ADDRESS_RPS: "1",
      MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_ADDRESS_BURST: "1",
    });
    const client = connectClient(NotificationService, transportsFor(proxied)["Connect JSON over HTTP/1.1"]);
    const token = issuer.mint("u-proxied", 60_000).token;
    const call = (forwardedFor: string) => client.listNotifications({ pageSize: 1 }, { headers: { ...bearer(token), "x-forwarded-for": forwardedFor } });

    // 6.6.6.6 is what the client wrote; the ingress (10.0.0.3) appended the address it saw.
    const seen = nextEvent<SeenCall>(notifications.events, "call");
    await call("6.6.6.6, 203.0.113.5, 10.0.0.3");
    assert.equal((await seen).clientAddress, "203.0.113.5");
    // The same client writing another address of its own is still the same client, over its limit.
    const refused = await call("7.7.7.7, 203.0.113.5").then(
      () => undefined,
      (error: unknown) => ConnectError.from(error),
    );
    assert.equal(refused?.code, Code.ResourceExhausted, "the limit keys on the resolved address, not on what the client wrote");
    // Another client behind the same proxy has a limit of its own.
    await call("203.0.113.6");
    // Identity, whose sign-in throttle keys on it, is told the same address (and never one the client sent).
    const signIn = await connectClient(IdentityService, transportsFor(proxied)["gRPC over h2c"])
      .signIn({ email: "ada@example.test", password: "wrong password" }, { headers: { "x-forwarded-for": "6.6.6.6, 203.0.113.9", "x-meshwork-client-address": "6.6.6.6" } })
      .then(
        () => undefined,
        (error: unknown) => ConnectError.from(error),
      );
    assert.equal(signIn?.code, Code.Unauthenticated);
    assert.equal(issuer.signInsFrom.at(-1), "203.0.113.9");
  });

  test("without trusted proxies every X-Forwarded-For is the peer's: a client cannot dodge the per-address limit", async (t) => {
    const { baseUrl: direct } = await startTestGateway(t, {
      ...backendEnv,
      ...GENEROUS_LIMITS,
      MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_ADDRESS_RPS: "1",
      MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_ADDRESS_BURST: "1",
    });
    const health = connectClient(Health, transportsFor(direct)["Connect JSON over HTTP/1.1"]);
    await health.check({ service: "" }, { headers: { "x-forwarded-for": "198.51.100.1" } });
    const refused = await health.check({ service: "" }, { headers: { "x-forwarded-for": "198.51.100.2" } }).then(
      () => undefined,
      (error: unknown) => ConnectError.from(error),
    );
    assert.equal(refused?.code, Code.ResourceExhausted);
  });

  test("by default MeshService and reflection are not served, health Watch needs a token, and health Check stays public for probes", async () => {
    const transport = transportsFor(baseUrl)["gRPC over h2c"];
    const meshRefusal = await connectClient(MeshService, transport)
      .getMeshStatus({})
      .then(
        () => undefined,
        (error: unknown) => ConnectError.from(error),
      );
    assert.equal(meshRefusal?.code, Code.Unimplemented);
    const reflection = await drain(
      connectClient(ServerReflection, transport).serverReflectionInfo(
        (async function* () {
          yield { host: "", messageRequest: { case: "listServices" as const, value: "" } };
        })(),
      ),
    );
    assert.equal(reflection.error?.code, Code.Unimplemented);

    const health = connectClient(Health, transport);
    assert.equal((await health.check({ service: "" })).status, HealthCheckResponse_ServingStatus.SERVING);
    const anonymousWatch = await drain(health.watch({ service: "" }));
    assert.equal(anonymousWatch.error?.code, Code.Unauthenticated);
    const stop = new AbortController();
    for await (const status of health.watch({ service: "" }, { headers: bearer(issuer.mint("u-watch", 60_000).token), signal: stop.signal })) {
      assert.equal(status.status, HealthCheckResponse_ServingStatus.SERVING);
      break;
    }
    stop.abort();
  });
});
