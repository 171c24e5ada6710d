/**
 * encodeMessage(): protobuf-es's `toBinary`, with the writer's memory taken
 * from Node's Buffer pool instead of new ArrayBuffers.
 *
 * `toBinary` makes a `BinaryWriter`, whose buffer starts as a
 * `new Uint8Array(128)` and doubles as it fills, and returns
 * `buffer.slice(0, length)`. A typed array of more than 64 bytes gets an
 * ArrayBuffer of its own outside the V8 heap, and on Node 20, 22 and 24 each
 * costs 0.4 to 2 µs to make and free, against 0.02 µs for one of 64 bytes
 * or less and 0.05 µs for a slice of Node's pool (`Buffer.allocUnsafe`).
 * Encoding the catalog's GetProductResponse (151 bytes: 128, then 256, then
 * the slice) took 4.2–4.6 µs in a loop here, and 1.7 µs with the writer on
 * the pool: most of an encode was making and freeing arrays. Every call the
 * platform serves encodes its response, and every call it makes encodes its
 * request.
 *
 * Why by hand: protobuf-es has no way to give `toBinary` a writer or its
 * memory (the buffer and the methods that grow it are private), and no other
 * library encodes its messages. So this wraps three of `BinaryWriter`'s
 * methods (growing the buffer, its DataView, and finishing), and the wrapped
 * ones change nothing unless encodeMessage() is on the stack: everything
 * else that encodes (Connect, reflection, tests) gets protobuf-es as it is.
 * Inside, the writer grows in slices of Node's pool (256 bytes first, then
 * doubling, as protobuf-es does from 128) and `finish` returns a Buffer over
 * the slice it wrote instead of copying it out. Each slice is this encode's
 * alone: Node's pool never hands out the same bytes twice.
 *
 * The wrap is adopted once per process, and only after it proved itself:
 * a probe message (nested messages longer than one length byte, doubles
 * through the DataView, non-ASCII text, repeated fields, a payload larger
 * than the pool) must encode to the very bytes plain `toBinary` gives.
 * Otherwise (a protobuf-es release whose writer works differently) the wrap
 * is taken off again and encodeMessage() is `toBinary`.
 */
import { fromJson, toBinary, type DescMessage, type JsonObject, type MessageShape } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { StructSchema } from "@bufbuild/protobuf/wkt";

/** The private parts of protobuf-es 2.x's BinaryWriter that the wrap reads and writes. */
interface WriterInternals {
  buffer: Uint8Array;
  viewCache: DataView;
  pos: number;
  stackPos: number[];
  ensureCapacity(size: number): void;
  view(): DataView;
  finish(): Uint8Array;
}

type WriterMethods = Pick<WriterInternals, "ensureCapacity" | "view" | "finish">;

/** On the wrapped prototype: protobuf-es's own methods (global, so that a second copy of this module finds them). */
const ORIGINAL = Symbol.for("meshwork.pooledEncode.original");

/** The first slice a writer takes: most of the platform's messages fit in it. */
const FIRST_SLICE = 256;
const EMPTY = new Uint8Array(0);
const EMPTY_VIEW = new DataView(EMPTY.buffer);

/** Whether an encodeMessage() is on the stack: the wrapped methods use the pool only then. */
let pooling = false;
let state: "unknown" | "adopted" | "refused" = "unknown";

/** The message's protobuf binary encoding: the bytes `toBinary` gives, as a Buffer of the caller's own. */
export function encodeMessage<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Buffer {
  if (state === "unknown") adopt();
  if (state !== "adopted") return asBuffer(toBinary(schema, message));
  // The wrapped finish() returns a Buffer.
  return onThePool(() => toBinary(schema, message)) as Buffer;
}

/** Runs `work` with the wrapped writer methods on the pool. */
function onThePool<T>(work: () => T): T {
  const outer = pooling;
  pooling = true;
  try {
    return work();
  } finally {
    pooling = outer;
  }
}

/** Whether encodeMessage() writes on the pool in this process (false: it is plain toBinary, see above). */
export function pooledEncoding(): boolean {
  if (state === "unknown") adopt();
  return state === "adopted";
}

function asBuffer(bytes: Uint8Array): Buffer {
  // toBinary's result is an array of its own: no need to copy it.
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function adopt(): void {
  const prototype = BinaryWriter.prototype as unknown as WriterMethods & { [ORIGINAL]?: WriterMethods };
  const wrapped = prototype[ORIGINAL] !== undefined;
  if (!wrapped) {
    if (!hasKnownShape(prototype)) {
      state = "refused";
      return;
    }
    const original: WriterMethods = { ensureCapacity: prototype.ensureCapacity, view: prototype.view, finish: prototype.finish };
    prototype[ORIGINAL] = original;
    prototype.ensureCapacity = function (this: WriterInternals, size: number): void {
      if (!pooling) {
        original.ensureCapacity.call(this, size);
        return;
      }
      const required = this.pos + size;
      const buffer = this.buffer;
      if (required <= buffer.length) return;
      let length = buffer.length || FIRST_SLICE;
      while (length < required) length *= 2;
      const slice = Buffer.allocUnsafe(length);
      // A plain Uint8Array over the slice, like the writer's own buffers, so protobuf-es's code sees one kind of array.
      const next = new Uint8Array(slice.buffer, slice.byteOffset, length);
      if (this.pos > 0) next.set(buffer.subarray(0, this.pos));
      this.buffer = next;
    };
    prototype.view = function (this: WriterInternals): DataView {
      if (!pooling) return original.view.call(this);
      // protobuf-es's view spans the whole ArrayBuffer; a slice of the pool starts part-way into it.
      const bytes = this.buffer;
      const cached = this.viewCache;
      if (cached.byteLength === bytes.byteLength && cached.byteOffset === bytes.byteOffset && cached.buffer === bytes.buffer) return cached;
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      this.viewCache = view;
      return view;
    };
    prototype.finish = function (this: WriterInternals): Uint8Array {
      if (!pooling) return original.finish.call(this);
      const bytes = this.buffer;
      const result = Buffer.from(bytes.buffer, bytes.byteOffset, this.pos);
      // The bytes are the caller's now: a writer used again starts on a new slice.
      this.buffer = EMPTY;
      this.viewCache = EMPTY_VIEW;
      this.pos = 0;
      this.stackPos = [];
      return result;
    };
  }
  if (provesItself()) {
    state = "adopted";
    return;
  }
  state = "refused";
  // Taken off only by the module that put it on: another copy's wrap may have passed its own probe.
  if (!wrapped) {
    const original = prototype[ORIGINAL]!;
    prototype.ensureCapacity = original.ensureCapacity;
    prototype.view = original.view;
    prototype.finish = original.finish;
    delete prototype[ORIGINAL];
  }
}

/** protobuf-es 2.x's writer: the three methods, and a new writer's own fields, by the names the wrap uses. */
function hasKnownShape(prototype: WriterMethods): boolean {
  if (typeof prototype.ensureCapacity !== "function" || typeof prototype.view !== "function" || typeof prototype.finish !== "function") return false;
  const writer = new BinaryWriter() as unknown as WriterInternals;
  return writer.buffer instanceof Uint8Array && writer.viewCache instanceof DataView && writer.pos === 0 && Array.isArray(writer.stackPos);
}

/**
 * The probe: a Struct whose values take every path of the writer the wrap
 * touches. Its numbers are doubles (DataView), its nested structs and lists
 * are longer than 127 bytes (a length prefix widened after the fact), its
 * text is partly not ASCII (encodeInto), and one string is longer than half
 * of Node's pool, so that the last slice is an allocation of its own.
 */
export function pooledEncodeProbe(): JsonObject {
  const long = "pooled ".repeat(700);
  const item = (index: number): JsonObject => ({ index: index + 0.5, name: `Ärger ${index} — 咖啡杯`, flags: [true, false, null], nested: { depth: index * 1e300, text: "x".repeat(index * 40) } });
  return { items: Array.from({ length: 12 }, (_, index) => item(index)), long, tiny: 1, empty: {}, none: null };
}

function provesItself(): boolean {
  const probe = fromJson(StructSchema, pooledEncodeProbe());
  const expected = toBinary(StructSchema, probe);
  let actual: Uint8Array;
  try {
    actual = onThePool(() => toBinary(StructSchema, probe));
  } catch {
    return false;
  }
  return Buffer.isBuffer(actual) && Buffer.compare(actual, expected) === 0;
}
