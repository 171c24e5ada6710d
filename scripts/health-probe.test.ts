/**
 * The probe's hand-written codec for the two health messages (see checkHealth
 * in health-probe.ts for why it does not load protobuf-es) agrees with
 * protobuf-es and the generated contract, both ways.
 */
import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { HealthCheckRequestSchema, HealthCheckResponse_ServingStatus, HealthCheckResponseSchema } from "@meshwork/contracts/health/v1/health";
import { describe, test } from "vitest";
import { SERVING_STATUS, decodeStatus, encodeRequest } from "./health-probe.js";

describe("the health probe's codec", () => {
  test("encodes HealthCheckRequest as protobuf-es does", () => {
    for (const service of ["", "shop.catalog.v1.CatalogService", "é".repeat(100), "x".repeat(300)]) {
      assert.deepEqual(new Uint8Array(encodeRequest(service)), toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service })), service.slice(0, 20));
      assert.equal(fromBinary(HealthCheckRequestSchema, encodeRequest(service)).service, service);
    }
  });

  test("decodes every ServingStatus, skipping fields it does not know", () => {
    for (const status of [0, 1, 2, 3]) {
      assert.equal(decodeStatus(toBinary(HealthCheckResponseSchema, create(HealthCheckResponseSchema, { status }))), status);
      assert.equal(SERVING_STATUS[status], HealthCheckResponse_ServingStatus[status]);
    }
    // Field 2 (a string) and field 3 (a fixed64) before the status, as a newer server might send.
    const withUnknown = Uint8Array.from([0x12, 0x02, 0x68, 0x69, 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x08, 0x01]);
    assert.equal(fromBinary(HealthCheckResponseSchema, withUnknown).status, HealthCheckResponse_ServingStatus.SERVING);
    assert.equal(decodeStatus(withUnknown), 1);
  });

  test("refuses a truncated or malformed answer, saying so", () => {
    assert.match((decodeStatus(Uint8Array.from([0x08])) as { error: string }).error, /malformed health answer \(truncated varint\)/);
    assert.match((decodeStatus(Uint8Array.from([0x12, 0x05, 0x68])) as { error: string }).error, /truncated field/);
    assert.match((decodeStatus(Uint8Array.from([0x0b])) as { error: string }).error, /wire type 3/);
  });
});
