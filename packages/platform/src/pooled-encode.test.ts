/**
 * encodeMessage() gives the very bytes toBinary gives, for every message of
 * the contracts with every field set; each result stays the caller's own;
 * and toBinary outside it is protobuf-es as it is.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { create, fromBinary, fromJson, ScalarType, toBinary, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { StructSchema } from "@bufbuild/protobuf/wkt";
import { GetProductResponseSchema } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { beforeAll, describe, test } from "vitest";
import { encodeMessage, pooledEncodeProbe, pooledEncoding } from "./pooled-encode.js";

const GENERATED = fileURLToPath(new URL("../../contracts/src/gen", import.meta.url));

/** Every message schema the contracts generate (and the well-known types they use). */
async function contractMessages(): Promise<DescMessage[]> {
  const files = readdirSync(GENERATED, { recursive: true, encoding: "utf8" }).filter((name) => name.endsWith("_pb.ts"));
  const schemas = new Map<string, DescMessage>();
  const add = (schema: DescMessage): void => {
    if (schemas.has(schema.typeName)) return;
    schemas.set(schema.typeName, schema);
    for (const field of schema.fields) if (field.message) add(field.message);
  };
  for (const file of files) {
    const module = (await import(pathToFileURL(path.join(GENERATED, file)).href)) as Record<string, unknown>;
    for (const value of Object.values(module)) {
      if (typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "message") add(value as DescMessage);
    }
  }
  return [...schemas.values()];
}

/** A deterministic stream of numbers in [0, 1). */
function randomFrom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

const TEXTS = ["", "EUR", "MW-ESPRESSO-CUP", "Ärger über den Kaffee", "咖啡杯 ☕", "x".repeat(200), "long ".repeat(60)];

/** A message with every field set (oneofs: one case), nested messages down to `depth`. */
function filled(schema: DescMessage, random: () => number, depth: number): Message {
  const value = (field: DescField & { fieldKind: "scalar" | "enum" | "message" | "list" | "map" }, kind: "scalar" | "enum" | "message", scalar: ScalarType | undefined): unknown => {
    if (kind === "enum") {
      const values = field.enum!.values;
      return values[Math.floor(random() * values.length)]!.number;
    }
    if (kind === "message") return filled(field.message!, random, depth - 1);
    const pick = random();
    switch (scalar) {
      case ScalarType.STRING:
        return TEXTS[Math.floor(pick * TEXTS.length)];
      case ScalarType.BYTES:
        return Uint8Array.from({ length: Math.floor(pick * 300) }, (_, index) => index % 256);
      case ScalarType.BOOL:
        return pick < 0.5;
      case ScalarType.DOUBLE:
      case ScalarType.FLOAT:
        return pick * 1000 - 500;
      case ScalarType.INT64:
      case ScalarType.SINT64:
      case ScalarType.SFIXED64:
        return BigInt(Math.floor(pick * 2 ** 52)) * (pick < 0.3 ? -1n : 1n);
      case ScalarType.UINT64:
      case ScalarType.FIXED64:
        return BigInt(Math.floor(pick * 2 ** 52));
      case ScalarType.UINT32:
      case ScalarType.FIXED32:
        return Math.floor(pick * 2 ** 32);
      default:
        return Math.floor(pick * 2 ** 31) * (pick < 0.3 ? -1 : 1);
    }
  };
  const init: Record<string, unknown> = {};
  const oneofsSet = new Set<string>();
  for (const field of schema.fields) {
    if (field.fieldKind === "message" && depth <= 0) continue;
    switch (field.fieldKind) {
      case "scalar":
      case "enum":
      case "message": {
        const item = value(field, field.fieldKind, field.fieldKind === "scalar" ? field.scalar : undefined);
        if (field.oneof) {
          if (oneofsSet.has(field.oneof.localName)) continue;
          oneofsSet.add(field.oneof.localName);
          init[field.oneof.localName] = { case: field.localName, value: item };
        } else init[field.localName] = item;
        break;
      }
      case "list": {
        if (field.listKind === "message" && depth <= 0) continue;
        const count = 1 + Math.floor(random() * 4);
        init[field.localName] = Array.from({ length: count }, () => value(field, field.listKind, field.listKind === "scalar" ? field.scalar : undefined));
        break;
      }
      case "map": {
        if (field.mapKind === "message" && depth <= 0) continue;
        const entries: Record<string, unknown> = {};
        for (let index = 0; index < 3; index++) {
          const key = field.mapKey === ScalarType.STRING ? `key ${index}` : field.mapKey === ScalarType.BOOL ? String(index % 2 === 0) : String(index);
          entries[key] = value(field, field.mapKind, field.mapKind === "scalar" ? field.scalar : undefined);
        }
        init[field.localName] = entries;
        break;
      }
    }
  }
  return create(schema, init as never) as Message;
}

let schemas: DescMessage[];
beforeAll(async () => {
  schemas = await contractMessages();
});

test("on this protobuf-es the writer works on the pool", () => {
  assert.equal(pooledEncoding(), true);
});

describe("encodeMessage gives toBinary's bytes", () => {
  test("for every message of the contracts, with every field set, nested three deep", () => {
    assert.ok(schemas.length > 50, `only ${schemas.length} message schemas found under ${GENERATED}`);
    const random = randomFrom(16);
    let largest = 0;
    for (const schema of schemas) {
      for (let round = 0; round < 4; round++) {
        const message = filled(schema, random, 3);
        const expected = toBinary(schema, message);
        const actual = encodeMessage(schema, message);
        assert.ok(Buffer.isBuffer(actual), schema.typeName);
        assert.ok(actual.equals(expected), `${schema.typeName}: ${actual.length} bytes against toBinary's ${expected.length}`);
        largest = Math.max(largest, actual.length);
      }
      // The empty message too: no write at all.
      assert.ok(encodeMessage(schema, create(schema) as never).equals(toBinary(schema, create(schema) as never)), `${schema.typeName} (empty)`);
    }
    // Messages past one doubling of the first slice and past half of Node's pool were among them.
    assert.ok(largest > 4096, `the largest message was ${largest} bytes`);
  });

  test("for the probe that decides the wrap: doubles, wide length prefixes, text that is not ASCII, a slice of its own", () => {
    const probe = fromJson(StructSchema, pooledEncodeProbe());
    const actual = encodeMessage(StructSchema, probe);
    assert.ok(actual.equals(toBinary(StructSchema, probe)));
    assert.ok(actual.length > Buffer.poolSize);
  });
});

test("each result stays the caller's own while later encodes run", () => {
  const random = randomFrom(7);
  const schema = schemas.find((candidate) => candidate.typeName === GetProductResponseSchema.typeName)!;
  const kept = Array.from({ length: 400 }, () => {
    const message = filled(schema, random, 3);
    return { message, bytes: encodeMessage(schema, message), copy: Buffer.from(toBinary(schema, message)) };
  });
  for (const { message, bytes, copy } of kept) {
    assert.ok(bytes.equals(copy));
    assert.deepEqual(fromBinary(schema, bytes), message);
  }
});

test("outside encodeMessage toBinary is protobuf-es as it is: a plain array over a buffer of its own", () => {
  encodeMessage(GetProductResponseSchema, create(GetProductResponseSchema, { product: { id: "before" } }));
  const message = create(GetProductResponseSchema, { product: { id: "MW-ESPRESSO-CUP", name: "Espresso cup", description: "x".repeat(300), price: { currencyCode: "EUR", amountMinor: 1250n } } });
  const bytes = toBinary(GetProductResponseSchema, message);
  assert.equal(Buffer.isBuffer(bytes), false);
  assert.equal(bytes.byteOffset, 0);
  assert.equal(bytes.buffer.byteLength, bytes.byteLength);
  assert.ok(Buffer.from(bytes).equals(encodeMessage(GetProductResponseSchema, message)));
});

test("an encode that fails throws toBinary's error and leaves toBinary as it was", () => {
  // A message of another type in a message field: protobuf-es refuses it part-way through the encode.
  const wrong = create(GetProductResponseSchema, { product: { id: "x" } });
  (wrong as { product: unknown }).product = create(StructSchema);
  const expected = (() => {
    try {
      toBinary(GetProductResponseSchema, wrong);
    } catch (error) {
      return error as Error;
    }
    assert.fail("toBinary accepted a foreign message");
  })();
  assert.throws(() => encodeMessage(GetProductResponseSchema, wrong), { name: expected.name, message: expected.message });
  const after = toBinary(GetProductResponseSchema, create(GetProductResponseSchema, { product: { id: "y".repeat(200) } }));
  assert.equal(Buffer.isBuffer(after), false, "the writer stayed on the pool after the failure");
});
