/**
 * Errors that carry a gRPC status: what handlers throw and clients receive.
 * The domain's own errors (InvalidFieldError) are in errors.ts, which loads
 * nothing, so that pure domain code can import them without grpc-js.
 */
import { Metadata, status } from "@grpc/grpc-js";
import { INVALID_FIELD_TRAILER, InvalidFieldError } from "./errors.js";

/** gRPC status codes (the numeric values are the same in every gRPC implementation). */
export const Code = status;
export type Code = status;

/**
 * An error that carries a gRPC status. Handlers throw it (usually through the
 * helpers below); clients receive it, with the code and message the server sent.
 */
export class RpcError extends Error {
  override readonly name = "RpcError";
  readonly code: Code;
  /** Trailing metadata sent with (or received with) the status. */
  readonly metadata: Metadata;

  constructor(code: Code, message: string, options: { metadata?: Metadata; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.metadata = options.metadata ?? new Metadata();
  }

  /** The field an INVALID_ARGUMENT names, when the server named one. */
  get field(): string | undefined {
    const value = this.metadata.get(INVALID_FIELD_TRAILER)[0];
    return typeof value === "string" ? value : undefined;
  }
}

/** INVALID_ARGUMENT naming the field: message "items[0].quantity: must be from 1 to 1000". */
export function invalidArgument(field: string, problem: string): RpcError {
  const metadata = new Metadata();
  metadata.set(INVALID_FIELD_TRAILER, field);
  return new RpcError(Code.INVALID_ARGUMENT, `${field}: ${problem}`, { metadata });
}

export const notFound = (message: string): RpcError => new RpcError(Code.NOT_FOUND, message);
export const failedPrecondition = (message: string): RpcError => new RpcError(Code.FAILED_PRECONDITION, message);
export const alreadyExists = (message: string): RpcError => new RpcError(Code.ALREADY_EXISTS, message);
export const unauthenticated = (message: string): RpcError => new RpcError(Code.UNAUTHENTICATED, message);
export const unavailable = (message: string): RpcError => new RpcError(Code.UNAVAILABLE, message);

export function isRpcError(error: unknown, code?: Code): error is RpcError {
  return error instanceof RpcError && (code === undefined || error.code === code);
}

/** The name of a status code as gRPC spells it, e.g. "NOT_FOUND". */
export function codeName(code: Code): string {
  return Code[code] ?? `CODE_${code}`;
}

/**
 * Wraps handler work so domain errors leave as status codes: InvalidFieldError
 * becomes INVALID_ARGUMENT, and `toRpcError` maps the other errors a service
 * knows (returning anything else unchanged, which the host then answers as
 * INTERNAL). Each service passes its own mapping.
 */
export function errorMapper(toRpcError: (error: unknown) => unknown = (error) => error): <T>(work: () => Promise<T>) => Promise<T> {
  const map = (error: unknown): unknown => (error instanceof InvalidFieldError ? invalidArgument(error.field, error.problem) : toRpcError(error));
  // One derived promise per call, not an async wrapper awaiting the work: this
  // runs on every call a service serves, and each promise costs (more so
  // once async hooks are on: call-context.ts).
  return <T>(work: () => Promise<T>): Promise<T> => {
    let pending: Promise<T>;
    try {
      pending = work();
    } catch (error) {
      return Promise.reject(map(error));
    }
    return pending.then(undefined, (error: unknown) => {
      throw map(error);
    });
  };
}
