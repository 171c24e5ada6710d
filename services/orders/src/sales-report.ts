/** The hour range a sales report covers: checked and rounded to whole hours (pure; see sales-service.ts). */
import { InvalidFieldError } from "@meshwork/platform/errors";

const HOUR_MS = 3_600_000;
/** The default range: the last 24 hours. */
export const DEFAULT_REPORT_HOURS = 24;
/** The longest range one report may cover: 31 days of hourly rows is already a lot for one answer. */
export const MAX_REPORT_HOURS = 31 * 24;

/** A google.protobuf.Timestamp as the request has it (absent when unset). */
export interface TimestampInput {
  readonly seconds: bigint;
  readonly nanos: number;
}

// google.protobuf.Timestamp's documented range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
const MIN_SECONDS = -62_135_596_800n;
const MAX_SECONDS = 253_402_300_799n;

function toDate(field: string, value: TimestampInput): Date {
  if (value.seconds < MIN_SECONDS || value.seconds > MAX_SECONDS) throw new InvalidFieldError(field, "must be a timestamp from 0001-01-01 to 9999-12-31");
  if (!Number.isInteger(value.nanos) || value.nanos < 0 || value.nanos > 999_999_999) throw new InvalidFieldError(field, "nanos must be from 0 to 999999999");
  return new Date(Number(value.seconds) * 1000 + Math.floor(value.nanos / 1_000_000));
}

const floorHour = (ms: number): number => Math.floor(ms / HOUR_MS) * HOUR_MS;
const ceilHour = (ms: number): number => Math.ceil(ms / HOUR_MS) * HOUR_MS;

/**
 * [from, to) on whole hours: `start` rounded down, `end` rounded up; by
 * default `end` is the end of the current hour and `start` 24 hours before
 * it. Refuses a malformed timestamp, a start not before the end, and a range
 * over MAX_REPORT_HOURS, naming the field.
 */
export function checkSalesRange(start: TimestampInput | undefined, end: TimestampInput | undefined, now: Date): { from: Date; to: Date } {
  const to = end ? ceilHour(toDate("end_time", end).getTime()) : ceilHour(now.getTime() + 1);
  const startMs = start ? toDate("start_time", start).getTime() : undefined;
  if (startMs !== undefined && end && startMs >= toDate("end_time", end).getTime()) throw new InvalidFieldError("start_time", "must be before end_time");
  const from = startMs !== undefined ? floorHour(startMs) : to - DEFAULT_REPORT_HOURS * HOUR_MS;
  if (from >= to) throw new InvalidFieldError("start_time", "must be before the end of the current hour when end_time is unset");
  if (to - from > MAX_REPORT_HOURS * HOUR_MS) throw new InvalidFieldError(start ? "start_time" : "end_time", `the range may cover at most ${MAX_REPORT_HOURS} hours (31 days)`);
  return { from: new Date(from), to: new Date(to) };
}
