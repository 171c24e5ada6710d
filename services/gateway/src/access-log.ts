import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "@meshwork/platform";
import { clientAddressKey, requestIdKey, userKey } from "./edge-context.js";

/**
 * One debug line per call that passed the edge checks: method, protocol,
 * outcome, time to the answer's headers, request id, caller. Nothing from
 * the messages or headers (tokens stay out of logs). Free when debug is off.
 */
export function createAccessLog(log: Logger): Interceptor {
  return (next) => async (request) => {
    if (!log.isLevelEnabled("debug")) return next(request);
    const started = performance.now();
    const fields = {
      rpc: `${request.service.name}.${request.method.name}`,
      // Named as every service's lines name it (the logger's mixin does so
      // only inside a request scope, which the edge enters with tracing on only).
      request_id: request.contextValues.get(requestIdKey),
      client: request.contextValues.get(clientAddressKey),
      // The user id only: the email the token also carries stays out of logs.
      userId: request.contextValues.get(userKey)?.userId,
    };
    try {
      const response = await next(request);
      log.debug({ ...fields, code: "ok", ms: Math.round(performance.now() - started) }, "call answered");
      return response;
    } catch (error) {
      log.debug({ ...fields, code: Code[ConnectError.from(error).code], ms: Math.round(performance.now() - started) }, "call failed");
      throw error;
    }
  };
}
