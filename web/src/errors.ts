/**
 * What to tell a person when a call fails: a sentence they can act on,
 * never a stack or a bare status code. Pure, so it is unit-tested in Node.
 */
import { Code, ConnectError } from "@connectrpc/connect";

export type ErrorContext = "sign-in" | "sign-up" | "checkout" | "general";

export interface HumaneError {
  readonly title: string;
  readonly detail?: string;
  /** Seconds to wait before trying again, when the gateway said so. */
  readonly retryAfterSeconds?: number;
  /** The session is gone: offer to sign in. */
  readonly signInAgain?: boolean;
}

/** Whole seconds from the gateway's retry-after (or retry-after-ms) header, or from its message. */
function retryAfter(error: ConnectError): number | undefined {
  const seconds = Number(error.metadata.get("retry-after"));
  if (Number.isFinite(seconds) && seconds > 0) return Math.ceil(seconds);
  const ms = Number(error.metadata.get("retry-after-ms"));
  if (Number.isFinite(ms) && ms > 0) return Math.max(1, Math.ceil(ms / 1000));
  const match = /retry after (\d+) ms/.exec(error.rawMessage);
  return match ? Math.max(1, Math.ceil(Number(match[1]) / 1000)) : undefined;
}

/** "quantity" from "items[0].quantity"; the gateway names the field in x-invalid-field. */
function fieldName(error: ConnectError): string | undefined {
  const field = error.metadata.get("x-invalid-field");
  if (!field) return undefined;
  return field
    .replace(/\[\d+\]/g, "")
    .split(".")
    .pop()!
    .replace(/_/g, " ");
}

export function describeError(error: unknown, context: ErrorContext = "general"): HumaneError {
  const connectError = ConnectError.from(error);
  const message = connectError.rawMessage;
  switch (connectError.code) {
    case Code.Unauthenticated:
      if (context === "sign-in") return { title: "That email and password do not match an account.", detail: "Check them, or create an account." };
      return { title: "Your session has expired.", detail: "Please sign in again to continue.", signInAgain: true };
    case Code.ResourceExhausted: {
      const seconds = retryAfter(connectError);
      if (/larger than/.test(message)) return { title: "That request is too large for the shop to accept." };
      return {
        title: "The shop is busy with your requests.",
        detail: seconds ? `Please try again in ${seconds} second${seconds === 1 ? "" : "s"}.` : "Please wait a moment and try again.",
        ...(seconds ? { retryAfterSeconds: seconds } : {}),
      };
    }
    case Code.AlreadyExists:
      return context === "sign-up" ? { title: "An account with this email already exists.", detail: "Sign in instead." } : { title: "That already exists.", detail: message };
    case Code.InvalidArgument: {
      const field = fieldName(connectError);
      return { title: field ? `Please check the ${field}.` : "Please check what you entered.", detail: message };
    }
    case Code.FailedPrecondition:
      return /stock/i.test(message) ? { title: "Some items are out of stock.", detail: message } : { title: "That cannot be done right now.", detail: message };
    case Code.NotFound:
      return { title: "We could not find that.", detail: "It may have been removed, or it belongs to another account." };
    case Code.PermissionDenied:
      return { title: "You are not allowed to do that." };
    case Code.Unavailable:
    case Code.DeadlineExceeded:
      return { title: "The shop is not reachable right now.", detail: "Please try again in a moment." };
    case Code.Canceled:
      return { title: "The request was cancelled." };
    default:
      return { title: "Something went wrong on our side.", detail: "Please try again; if it keeps happening, come back later." };
  }
}

/** A rejected or failed order's reason, as a heading a shopper understands. */
export function describeRejection(reason: string): string {
  if (/declin|insufficient funds/i.test(reason)) return "Your payment was declined.";
  if (/stock/i.test(reason)) return "Some items are out of stock.";
  return "Your order could not be completed.";
}
