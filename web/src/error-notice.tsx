import { useEffect, useState } from "react";
import { Link } from "wouter";
import { describeError, type ErrorContext } from "./errors.js";

/** A failed call, said as a person would say it; counts down when the gateway asked us to wait. */
/** `onRetry` offers a Try again button (once the wait the gateway asked for is over). */
export function ErrorNotice({ error, context = "general", onRetry }: { error: unknown; context?: ErrorContext; onRetry?: () => void }) {
  const humane = describeError(error, context);
  const [left, setLeft] = useState(humane.retryAfterSeconds ?? 0);
  // biome-ignore lint/correctness/useExhaustiveDependencies: a new error restarts the countdown even when it asks for the same wait.
  useEffect(() => {
    setLeft(humane.retryAfterSeconds ?? 0);
  }, [error, humane.retryAfterSeconds]);
  useEffect(() => {
    if (left <= 0) return;
    const timer = setTimeout(() => setLeft(left - 1), 1000);
    return () => clearTimeout(timer);
  }, [left]);
  return (
    <div className="notice error" role="alert">
      <strong>{humane.title}</strong>
      {humane.retryAfterSeconds !== undefined ? (
        <span> {left > 0 ? `Please try again in ${left} second${left === 1 ? "" : "s"}.` : "You can try again now."}</span>
      ) : (
        humane.detail && <span> {humane.detail}</span>
      )}
      {onRetry && !humane.signInAgain && left <= 0 && (
        <>
          {" "}
          <button type="button" onClick={onRetry}>
            Try again
          </button>
        </>
      )}
      {humane.signInAgain && (
        <span>
          {" "}
          <Link href="/signin">Sign in</Link>
        </span>
      )}
    </div>
  );
}
