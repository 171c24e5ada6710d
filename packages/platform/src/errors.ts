/**
 * The errors domain code throws. This module imports nothing: domain files
 * use it through `@meshwork/platform/errors` without loading the platform's
 * runtime (grpc-js, knex, amqplib, OpenTelemetry), which the package's main
 * entry brings in. Their mapping to gRPC statuses is in rpc-errors.ts.
 */

/** The trailer that names the offending request field of an INVALID_ARGUMENT. */
export const INVALID_FIELD_TRAILER = "x-invalid-field";

/**
 * A request that breaks a rule, naming the field ("items[0].quantity") and
 * the problem ("must be from 1 to 1000"). Domain code throws it; errorMapper
 * turns it into INVALID_ARGUMENT with the field named.
 */
export class InvalidFieldError extends Error {
  override readonly name = "InvalidFieldError";
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}
