import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { OrderStatus } from "@meshwork/contracts/shop/orders/v1/orders";
import { orderEventBinary, orderEventJson } from "../test/support.js";
import { MalformedEventError, parseOrderEvent, UnsupportedSchemaVersionError } from "./order-events.js";

const json = (value: unknown): Uint8Array => Buffer.from(JSON.stringify(value));
const asObject = (body: Uint8Array): Record<string, unknown> => JSON.parse(Buffer.from(body).toString("utf8")) as Record<string, unknown>;

describe("reading order events", () => {
  test("an event as orders publishes it (protobuf JSON) reads as the order's user, status, items and total", () => {
    const event = parseOrderEvent(orderEventJson({ eventId: "e-1", orderId: "o-1", userId: "u-1", status: OrderStatus.CONFIRMED, quantities: [2, 3], totalMinor: 4500n }), "application/json");
    assert.deepEqual(event, { eventId: "e-1", schemaVersion: 1, orderId: "o-1", userId: "u-1", status: "confirmed", reason: "", itemCount: 5, total: { amountMinor: 4500n, currency: "EUR" } });
  });

  test("the binary protobuf encoding is read too", () => {
    const event = parseOrderEvent(orderEventBinary({ status: OrderStatus.REJECTED, reason: "out of stock" }), "application/x-protobuf");
    assert.equal(event.status, "rejected");
    assert.equal(event.reason, "out of stock");
  });

  test("each order status maps to its event status", () => {
    const statuses: [OrderStatus, string][] = [
      [OrderStatus.PENDING, "placed"],
      [OrderStatus.CONFIRMED, "confirmed"],
      [OrderStatus.REJECTED, "rejected"],
      [OrderStatus.FAILED, "failed"],
    ];
    for (const [status, expected] of statuses) assert.equal(parseOrderEvent(orderEventJson({ status }), "application/json").status, expected);
  });

  test("fields added by a newer orders service are skipped, and a status it added reads as unknown", () => {
    const body = asObject(orderEventJson({ status: OrderStatus.CONFIRMED }));
    const extended = { ...body, giftWrap: true, order: { ...(body.order as object), status: "ORDER_STATUS_SHIPPED", courier: "x" } };
    assert.equal(parseOrderEvent(json(extended), "application/json").status, undefined);
    const numeric = { ...body, order: { ...(body.order as object), status: 42 } };
    assert.equal(parseOrderEvent(json(numeric), "application/json").status, undefined);
  });

  test("garbage, a wrong shape or an unknown content type is refused as malformed, saying why", () => {
    const refused = (body: Uint8Array, contentType: string, why: RegExp): void => {
      assert.throws(
        () => parseOrderEvent(body, contentType),
        (error: unknown) => error instanceof MalformedEventError && why.test(error.message),
      );
    };
    refused(Buffer.from("certainly not json"), "application/json", /not a shop\.orders\.v1\.OrderStatusChanged/);
    refused(Buffer.from([0xff, 0xfe, 0x00]), "application/json", /not a shop\.orders\.v1\.OrderStatusChanged/);
    refused(json({ schemaVersion: "one" }), "application/json", /not a shop\.orders\.v1\.OrderStatusChanged/);
    refused(Buffer.from([0x0a, 0xff]), "application/x-protobuf", /not a shop\.orders\.v1\.OrderStatusChanged/);
    refused(orderEventJson(), "text/plain", /unsupported content type "text\/plain"/);
    const body = asObject(orderEventJson());
    refused(json({ ...body, eventId: "" }), "application/json", /event_id is missing/);
    refused(json({ ...body, order: undefined }), "application/json", /order is missing/);
    refused(json({ ...body, order: { ...(body.order as object), userId: "" } }), "application/json", /order\.user_id is missing/);
    refused(json({ ...body, order: { ...(body.order as object), id: "" } }), "application/json", /order\.id is missing/);
    refused(json({ ...body, schemaVersion: 0 }), "application/json", /schema_version is missing/);
  });

  test("a schema version other than 1 is refused as unsupported, naming the version", () => {
    assert.throws(
      () => parseOrderEvent(orderEventJson({ schemaVersion: 2 }), "application/json"),
      (error: unknown) => error instanceof UnsupportedSchemaVersionError && error.message === "unsupported schema version 2 (this service reads version 1)",
    );
  });

  test("a content type with parameters is read by its media type", () => {
    assert.equal(parseOrderEvent(orderEventJson(), "application/json; charset=utf-8").status, "confirmed");
  });
});
