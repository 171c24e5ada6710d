import { pino, type Logger, type DestinationStream } from "pino";
import { logCorrelation } from "./telemetry/log-context.js";

export type { Logger } from "pino";

export interface LoggerOptions {
  /** Service name, on every line as `service`. */
  readonly service: string;
  /** pino level: trace, debug, info, warn, error, fatal or silent. */
  readonly level?: string;
  /** Where lines go; standard output when omitted. */
  readonly destination?: DestinationStream;
}

/**
 * JSON logs, one object per line, with the service name on each, and the
 * trace_id, span_id and request_id of the work that wrote it (see
 * telemetry/log-context.ts). Secrets are redacted by path as a second line of
 * defence; the first is never logging them.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? "info",
      base: { service: options.service },
      mixin: logCorrelation,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: ["password", "*.password", "token", "*.token", "accessToken", "*.accessToken", "authorization", "*.authorization", "cardToken", "*.cardToken"],
        censor: "[redacted]",
      },
    },
    options.destination,
  );
}

/** A logger that drops everything, for tests that do not look at logs. */
export function createSilentLogger(): Logger {
  return pino({ level: "silent" });
}
