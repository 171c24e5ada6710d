/** Assertions on errors that several services' tests make. */
import assert from "node:assert/strict";
import { ConnectError } from "@connectrpc/connect";
import { Code, isRpcError } from "@meshwork/platform";

/** `work` fails with an RpcError of `code` whose message matches `message`. */
export async function rejectsWith(work: Promise<unknown>, code: Code, message: RegExp): Promise<void> {
  const error = await work.then(
    () => assert.fail("expected an error"),
    (caught: unknown) => caught,
  );
  assert.ok(isRpcError(error, code), `expected code ${Code[code]}, got ${String(error)}`);
  assert.match(error.message, message);
}

/** The ConnectError a Connect call failed with; fails the test when the call succeeds. */
export async function connectError(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (error) {
    return ConnectError.from(error);
  }
  assert.fail("expected the call to fail");
}
