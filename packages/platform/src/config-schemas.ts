/**
 * The kinds of values services configure, as zod schemas. A leaf: config.ts
 * builds the common settings from it, and telemetry/ its own, without the
 * two importing each other.
 */
import { z } from "zod";

/** Schemas for the kinds of values services configure. */
export const settings = {
  port: () => z.coerce.number({ error: "expected a port number" }).int("expected a whole port number").min(0, "expected a port from 0 to 65535").max(65535, "expected a port from 0 to 65535"),
  positiveInt: () => z.coerce.number({ error: "expected a number" }).int("expected a whole number").positive("expected a number above 0"),
  nonNegativeInt: () => z.coerce.number({ error: "expected a number" }).int("expected a whole number").min(0, "expected 0 or more"),
  /** Milliseconds, from a number. */
  durationMs: () => z.coerce.number({ error: "expected milliseconds" }).int("expected whole milliseconds").min(0, "expected 0 or more milliseconds"),
  /** A fraction from 0 to 1. */
  ratio: () => z.coerce.number({ error: "expected a number from 0 to 1" }).min(0, "expected a number from 0 to 1").max(1, "expected a number from 0 to 1"),
  text: () => z.string(),
  nonEmpty: () => z.string().min(1, "expected a non-empty value"),
  /** An optional URL: empty or unset means undefined. */
  optionalUrl: () =>
    z
      .string()
      .optional()
      .transform((value) => (value === undefined || value === "" ? undefined : value))
      .refine((value) => value === undefined || URL.canParse(value), "expected a URL such as postgres://user@host:5432/db"),
  logLevel: () => z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"], { error: "expected one of trace, debug, info, warn, error, fatal, silent" }),
  bool: () =>
    z
      .union([z.boolean(), z.enum(["true", "false", "1", "0", "yes", "no"], { error: "expected true or false" })])
      .transform((value) => value === true || value === "true" || value === "1" || value === "yes"),
};
