/**
 * What every PaymentStore adapter must do. The same suite runs against the
 * memory adapter, knex on PGlite and knex on PostgreSQL, so they cannot drift.
 * Leases are given as 0 ms (already passed) or a minute (still running), so
 * the suite needs no control over the database's clock.
 */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import type { AuthorizationClaim, PaymentStore } from "../src/ports.js";

export type StoreFactory = (t: TestScope) => Promise<PaymentStore | undefined>;

const LIVE = 60_000;
const EXPIRED = 0;

const claimOf = (orderId: string, overrides: Partial<AuthorizationClaim> = {}): AuthorizationClaim => ({
  orderId,
  amountMinor: 4500,
  currency: "EUR",
  fingerprint: `fp-${orderId}`,
  leaseMs: LIVE,
  ...overrides,
});

export function paymentStoreBehaviour(adapter: string, open: StoreFactory): void {
  describe(`PaymentStore behaviour: ${adapter}`, () => {
    test("the first claim of an order records a pending payment holding the request, with a lease", async (t) => {
      const store = await open(t);
      if (!store) return;
      assert.equal(await store.get("o-1"), undefined);
      const before = Date.now();
      const result = await store.claim(claimOf("o-1", { amountMinor: 1_000_000_000_000, currency: "JPY" }));
      assert.equal(result.claimed, true);
      if (!result.claimed) return;
      const { payment } = result;
      assert.equal(payment.orderId, "o-1");
      assert.equal(payment.status, "pending");
      assert.deepEqual(payment.request, { amountMinor: 1_000_000_000_000, currency: "JPY", fingerprint: "fp-o-1" });
      assert.equal(payment.declineReason, "");
      assert.equal(payment.claim?.id, result.claimId);
      assert.ok(payment.claim.expiresAt.getTime() >= before + LIVE - 5_000, "the lease runs about a minute");
      assert.ok(payment.createdAt instanceof Date && payment.updatedAt instanceof Date);
      assert.deepEqual(await store.get("o-1"), payment);
    });

    test("while the lease runs, any other claim gets the existing payment and no claim", async (t) => {
      const store = await open(t);
      if (!store) return;
      const first = await store.claim(claimOf("o-2"));
      const same = await store.claim(claimOf("o-2"));
      const other = await store.claim(claimOf("o-2", { fingerprint: "fp-other", amountMinor: 1 }));
      assert.equal(same.claimed, false);
      assert.equal(other.claimed, false);
      assert.deepEqual(same.payment, first.payment);
      assert.deepEqual(other.payment, first.payment);
    });

    test("finish records the processor's answer once; later claims return it unchanged", async (t) => {
      const store = await open(t);
      if (!store) return;
      const claimed = await store.claim(claimOf("o-3"));
      assert.ok(claimed.claimed);
      const authorized = await store.finish("o-3", claimed.claimId, { status: "authorized" });
      assert.equal(authorized.status, "authorized");
      assert.equal(authorized.claim, undefined);
      assert.equal(authorized.id, claimed.payment.id);
      assert.ok(authorized.updatedAt >= claimed.payment.updatedAt);
      assert.deepEqual(await store.finish("o-3", claimed.claimId, { status: "declined", reason: "late" }), authorized, "a second finish changes nothing");
      const again = await store.claim(claimOf("o-3", { leaseMs: EXPIRED }));
      assert.equal(again.claimed, false);
      assert.deepEqual(again.payment, authorized);

      const declinedClaim = await store.claim(claimOf("o-4"));
      assert.ok(declinedClaim.claimed);
      const declined = await store.finish("o-4", declinedClaim.claimId, { status: "declined", reason: "insufficient funds" });
      assert.equal(declined.status, "declined");
      assert.equal(declined.declineReason, "insufficient funds");
      assert.deepEqual(await store.get("o-4"), declined);
    });

    test("a released claim can be claimed again at once by the same request only", async (t) => {
      const store = await open(t);
      if (!store) return;
      const first = await store.claim(claimOf("o-5"));
      assert.ok(first.claimed);
      await store.release("o-5", first.claimId);
      const pending = await store.get("o-5");
      assert.equal(pending?.status, "pending", "nothing final is recorded");
      const other = await store.claim(claimOf("o-5", { fingerprint: "fp-other" }));
      assert.equal(other.claimed, false);
      const retry = await store.claim(claimOf("o-5"));
      assert.ok(retry.claimed);
      assert.notEqual(retry.claimId, first.claimId);
      assert.equal(retry.payment.id, first.payment.id, "the same payment, not a second one");
      await store.release("o-5", first.claimId);
      assert.equal((await store.get("o-5"))?.claim?.id, retry.claimId, "a stale claim id cannot release the new claim");
    });

    test("an expired claim (its holder crashed) is taken over by the same request; the old holder can no longer finish", async (t) => {
      const store = await open(t);
      if (!store) return;
      const crashed = await store.claim(claimOf("o-6", { leaseMs: EXPIRED }));
      assert.ok(crashed.claimed);
      const takeover = await store.claim(claimOf("o-6"));
      assert.ok(takeover.claimed);
      assert.notEqual(takeover.claimId, crashed.claimId);
      const late = await store.finish("o-6", crashed.claimId, { status: "declined", reason: "stale" });
      assert.equal(late.status, "pending", "the old holder's answer is not recorded");
      const finished = await store.finish("o-6", takeover.claimId, { status: "authorized" });
      assert.equal(finished.status, "authorized");
    });

    test("concurrent claims of one order: exactly one wins, all see the same payment", async (t) => {
      const store = await open(t);
      if (!store) return;
      const results = await Promise.all(Array.from({ length: 10 }, () => store.claim(claimOf("o-7"))));
      assert.equal(results.filter((result) => result.claimed).length, 1);
      assert.equal(new Set(results.map((result) => result.payment.id)).size, 1);
    });

    test("concurrent takeovers of an expired claim: exactly one wins", async (t) => {
      const store = await open(t);
      if (!store) return;
      await store.claim(claimOf("o-8", { leaseMs: EXPIRED }));
      const results = await Promise.all(Array.from({ length: 8 }, () => store.claim(claimOf("o-8"))));
      assert.equal(results.filter((result) => result.claimed).length, 1);
    });

    test("void: authorized becomes voided keeping the amount, declined stays declined, a second void changes nothing", async (t) => {
      const store = await open(t);
      if (!store) return;
      const claimed = await store.claim(claimOf("o-9"));
      assert.ok(claimed.claimed);
      await store.finish("o-9", claimed.claimId, { status: "authorized" });
      const voided = await store.void("o-9");
      assert.equal(voided.status, "voided");
      assert.deepEqual(voided.request, claimed.payment.request);
      assert.deepEqual(await store.void("o-9"), voided);

      const declinedClaim = await store.claim(claimOf("o-10"));
      assert.ok(declinedClaim.claimed);
      const declined = await store.finish("o-10", declinedClaim.claimId, { status: "declined", reason: "card declined by the issuer" });
      assert.deepEqual(await store.void("o-10"), declined);
    });

    test("void of a pending payment wins: the holder's answer is not recorded", async (t) => {
      const store = await open(t);
      if (!store) return;
      const claimed = await store.claim(claimOf("o-11"));
      assert.ok(claimed.claimed);
      const voided = await store.void("o-11");
      assert.equal(voided.status, "voided");
      assert.equal(voided.claim, undefined);
      assert.deepEqual(await store.finish("o-11", claimed.claimId, { status: "authorized" }), voided);
      const late = await store.claim(claimOf("o-11", { leaseMs: EXPIRED }));
      assert.equal(late.claimed, false);
      assert.equal(late.payment.status, "voided");
    });

    test("void of an unknown order records a tombstone that every later claim gets", async (t) => {
      const store = await open(t);
      if (!store) return;
      const tombstone = await store.void("o-12");
      assert.equal(tombstone.status, "voided");
      assert.equal(tombstone.request, undefined);
      assert.equal(tombstone.claim, undefined);
      assert.deepEqual(await store.void("o-12"), tombstone);
      const late = await store.claim(claimOf("o-12"));
      assert.equal(late.claimed, false);
      assert.deepEqual(late.payment, tombstone);
    });

    test("a void racing a first claim: whichever lands first, the order ends voided, with one payment", async (t) => {
      const store = await open(t);
      if (!store) return;
      const [claimed, voided] = await Promise.all([store.claim(claimOf("o-13")), store.void("o-13")]);
      assert.equal(voided.status, "voided");
      if (claimed.claimed) assert.equal(voided.id, claimed.payment.id);
      else assert.equal(claimed.payment.status, "voided");
      assert.equal((await store.get("o-13"))?.status, "voided");
    });
  });
}
