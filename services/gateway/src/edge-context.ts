/**
 * What the gateway learns about a call before its handler runs, handed from
 * the node adapter and the request gate to the handlers as Connect context
 * values (never module state: many calls run at once).
 */
import type { DescMethod } from "@bufbuild/protobuf";
import { createContextKey, type ContextValues } from "@connectrpc/connect";
import type { AuthenticatedUser } from "@meshwork/platform";

/** The request id the call carries downstream and returns to the caller. */
export const requestIdKey = createContextKey<string>("", { description: "x-request-id of the call" });

/** The caller's address, as trusted proxies report it (see client-address.ts). */
export const clientAddressKey = createContextKey<string>("unknown", { description: "caller's address" });

/** When the verified token expires (epoch ms), so a stream can end with it; undefined on public RPCs. */
export const tokenExpiresAtKey = createContextKey<number | undefined>(undefined, { description: "caller's token expiry" });

/** The verified user, for RPCs that need a token; undefined on public ones. */
export const userKey = createContextKey<AuthenticatedUser | undefined>(undefined, { description: "verified caller" });

/**
 * What the request gate reads and writes of a call: Connect's HandlerContext
 * has it, and so does the gateway's own gRPC path (grpc-passthrough.ts), which
 * runs the same gate without Connect.
 */
export interface GateContext {
  readonly method: DescMethod;
  readonly requestHeader: Pick<Headers, "get">;
  readonly responseHeader: Pick<Headers, "set">;
  readonly values: ContextValues;
}

/** The request gate: refuses a call by throwing a ConnectError. */
export type RequestGate = (ctx: GateContext) => Promise<void>;
