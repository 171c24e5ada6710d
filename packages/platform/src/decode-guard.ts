/**
 * Request bytes that are not a valid message are the caller's mistake:
 * INVALID_ARGUMENT, not INTERNAL. grpc-js answers any error thrown by a
 * method's requestDeserialize with INTERNAL "Error deserializing request"
 * (hard-coded in its server call, before any handler or server interceptor
 * runs), so the deserializer must not throw. It returns an UndecodableRequest
 * instead, and the wrapped handler answers it with INVALID_ARGUMENT before
 * the real handler sees it.
 *
 * Applies to unary and server-streaming methods, whose single request arrives
 * as `call.request`. Streaming requests (server reflection's bidi stream) are
 * left as they are: their messages arrive as events the handler consumes itself.
 */
import { Metadata, type Server, type ServiceDefinition, type UntypedServiceImplementation, type sendUnaryData } from "@grpc/grpc-js";
import { Code } from "./rpc-errors.js";

/** What the guarded deserializer returns instead of throwing. */
export class UndecodableRequest {
  constructor(readonly reason: string) {}
}

interface RequestCall {
  readonly request: unknown;
  emit(event: "error", status: unknown): boolean;
}

function invalidBody(path: string, request: UndecodableRequest) {
  // The decoder's complaint is about the caller's own bytes ("premature EOF",
  // "invalid wire type"): nothing internal, and it tells the caller what is wrong.
  return { code: Code.INVALID_ARGUMENT, details: `malformed request body for ${path}: ${request.reason}`, metadata: new Metadata() };
}

/** The service definition and implementation, with undecodable requests answered INVALID_ARGUMENT. */
export function guardDecoding(definition: ServiceDefinition, implementation: UntypedServiceImplementation): [ServiceDefinition, UntypedServiceImplementation] {
  const guardedDefinition: Record<string, ServiceDefinition[string]> = {};
  const guardedImplementation: UntypedServiceImplementation = { ...implementation };
  for (const [name, method] of Object.entries(definition)) {
    // grpc-js finds a handler under the method's name or its originalName ("Check" or "check").
    const key = name in implementation ? name : (method.originalName ?? name);
    const handler = implementation[key];
    if (method.requestStream || typeof handler !== "function") {
      guardedDefinition[name] = method;
      continue;
    }
    const deserialize = method.requestDeserialize;
    guardedDefinition[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return deserialize(bytes);
        } catch (error) {
          return new UndecodableRequest(error instanceof Error ? error.message : String(error));
        }
      },
    };
    const inner = handler as (call: RequestCall, callback?: sendUnaryData<unknown>) => void;
    guardedImplementation[key] = ((call: RequestCall, callback?: sendUnaryData<unknown>) => {
      if (!(call.request instanceof UndecodableRequest)) return inner(call, callback);
      const status = invalidBody(method.path, call.request);
      if (method.responseStream) call.emit("error", status);
      else callback?.(status);
    }) as never;
  }
  return [guardedDefinition, guardedImplementation];
}

/**
 * A stand-in for `server` to hand to libraries that add their own services
 * (grpc-health-check): each service they add is guarded too.
 */
export function decodingGuardedServer(server: Server): Pick<Server, "addService"> {
  return {
    addService: (definition, implementation) => server.addService(...guardDecoding(definition, implementation)),
  };
}
