/**
 * What every NotificationStore adapter must do. The same suite runs against
 * the memory adapter, knex on PGlite and knex on PostgreSQL, so they cannot drift.
 */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import type { NotificationDraft } from "../src/notifications.js";
import type { NotificationStore } from "../src/ports.js";

export type StoreFactory = (t: TestScope) => Promise<NotificationStore | undefined>;

const draft = (userId: string, orderId = "o-1", subject = "Order confirmed"): NotificationDraft => ({ userId, orderId, subject, body: `About ${orderId}` });

export function notificationStoreBehaviour(adapter: string, open: StoreFactory): void {
  describe(`NotificationStore behaviour: ${adapter}`, () => {
    test("recording enters the message in the inbox and writes its notifications, which read back as written", async (t) => {
      const store = await open(t);
      if (!store) return;
      const before = Date.now();
      const outcome = await store.record("m-1", [draft("ada", "o-1")]);
      assert.equal(outcome.duplicate, false);
      const [recorded] = outcome.notifications;
      assert.ok(recorded);
      assert.deepEqual(
        { userId: recorded.userId, orderId: recorded.orderId, subject: recorded.subject, body: recorded.body, messageId: recorded.messageId },
        { ...draft("ada", "o-1"), messageId: "m-1" },
      );
      assert.match(recorded.id, /^[0-9a-f-]{36}$/);
      assert.ok(recorded.seq > 0);
      assert.ok(recorded.createdAt instanceof Date && recorded.createdAt.getTime() >= before - 5000);
      assert.deepEqual(await store.list("ada", 10, undefined), [recorded]);
    });

    test("the same message id again writes nothing and says duplicate", async (t) => {
      const store = await open(t);
      if (!store) return;
      await store.record("m-1", [draft("ada")]);
      assert.deepEqual(await store.record("m-1", [draft("ada"), draft("ada", "o-2")]), { duplicate: true, notifications: [] });
      assert.equal((await store.list("ada", 10, undefined)).length, 1);
    });

    test("an event that makes no notification still claims its message id", async (t) => {
      const store = await open(t);
      if (!store) return;
      assert.deepEqual(await store.record("m-quiet", []), { duplicate: false, notifications: [] });
      assert.equal((await store.record("m-quiet", [draft("ada")])).duplicate, true);
      assert.deepEqual(await store.list("ada", 10, undefined), []);
    });

    test("the same message handled by several consumers at once makes its notifications exactly once", async (t) => {
      const store = await open(t);
      if (!store) return;
      const outcomes = await Promise.all(Array.from({ length: 8 }, () => store.record("m-race", [draft("ada", "o-race")])));
      assert.equal(outcomes.filter((outcome) => !outcome.duplicate).length, 1);
      assert.deepEqual(
        outcomes.filter((outcome) => outcome.duplicate).map((outcome) => outcome.notifications.length),
        [0, 0, 0, 0, 0, 0, 0],
      );
      assert.equal((await store.list("ada", 10, undefined)).length, 1);
    });

    test("different messages recorded at once are all kept, with distinct increasing positions", async (t) => {
      const store = await open(t);
      if (!store) return;
      await Promise.all(Array.from({ length: 10 }, (_, index) => store.record(`m-${index}`, [draft("ada", `o-${index}`)])));
      const all = await store.list("ada", 100, undefined);
      assert.equal(all.length, 10);
      assert.equal(new Set(all.map((notification) => notification.seq)).size, 10);
    });

    test("a user's list is newest first, only theirs, and pages by position", async (t) => {
      const store = await open(t);
      if (!store) return;
      for (let index = 0; index < 5; index++) {
        await store.record(`ada-${index}`, [draft("ada", `o-${index}`)]);
        await store.record(`bob-${index}`, [draft("bob", `b-${index}`)]);
      }
      const first = await store.list("ada", 2, undefined);
      assert.deepEqual(
        first.map((notification) => notification.orderId),
        ["o-4", "o-3"],
      );
      const second = await store.list("ada", 2, first.at(-1)!.seq);
      assert.deepEqual(
        second.map((notification) => notification.orderId),
        ["o-2", "o-1"],
      );
      const last = await store.list("ada", 2, second.at(-1)!.seq);
      assert.deepEqual(
        last.map((notification) => notification.orderId),
        ["o-0"],
      );
      assert.deepEqual(await store.list("carol", 10, undefined), []);
    });

    test("listAfter reads a user's notifications after a position, oldest first, and latestSeq is where the user is now", async (t) => {
      const store = await open(t);
      if (!store) return;
      assert.equal(await store.latestSeq("ada"), 0);
      const {
        notifications: [one],
      } = await store.record("m-1", [draft("ada", "o-1")]);
      await store.record("m-x", [draft("bob", "b-1")]);
      const { notifications: two } = await store.record("m-2", [draft("ada", "o-2"), draft("ada", "o-3")]);
      assert.equal(await store.latestSeq("ada"), two.at(-1)!.seq);
      assert.deepEqual(
        (await store.listAfter("ada", 0, 10)).map((notification) => notification.orderId),
        ["o-1", "o-2", "o-3"],
      );
      assert.deepEqual(
        (await store.listAfter("ada", one!.seq, 10)).map((notification) => notification.orderId),
        ["o-2", "o-3"],
      );
      assert.deepEqual(
        (await store.listAfter("ada", 0, 2)).map((notification) => notification.orderId),
        ["o-1", "o-2"],
      );
      assert.deepEqual(await store.listAfter("ada", two.at(-1)!.seq, 10), []);
    });

    test("changesAfter reads every user's notifications after a position, oldest first, and latestChangeSeq is the newest of all", async (t) => {
      const store = await open(t);
      if (!store) return;
      assert.equal(await store.latestChangeSeq(), 0);
      assert.deepEqual(await store.changesAfter(0, 10), []);
      const {
        notifications: [ada],
      } = await store.record("m-1", [draft("ada", "o-1")]);
      const {
        notifications: [bob, ada2],
      } = await store.record("m-2", [draft("bob", "b-1"), draft("ada", "o-2")]);
      assert.equal(await store.latestChangeSeq(), ada2!.seq);
      assert.deepEqual(await store.changesAfter(0, 10), [
        { seq: ada!.seq, userId: "ada" },
        { seq: bob!.seq, userId: "bob" },
        { seq: ada2!.seq, userId: "ada" },
      ]);
      assert.deepEqual(await store.changesAfter(ada!.seq, 1), [{ seq: bob!.seq, userId: "bob" }]);
      assert.deepEqual(await store.changesAfter(ada2!.seq, 10), []);
    });
  });
}
