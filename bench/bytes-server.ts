import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall, type ServiceDefinition } from "@grpc/grpc-js";
import { create, toBinary } from "@bufbuild/protobuf";
import { demoCatalog } from "../services/catalog/src/demo-catalog.js";
import { GetProductRequestSchema } from "@meshwork/contracts/shop/catalog/v1/catalog";

/**
 * The floor servers of the bench (bare-server.ts, bare-proxy.ts): grpc-js
 * with default options and one unary method whose handler gets the request
 * bytes and answers bytes, neither decoding nor encoding anything.
 */
const identity = (bytes: Buffer): Buffer => bytes;

/** A grpc-js Server with one bytes-in, bytes-out unary method at `path`, bound to a free loopback port. */
export async function startBytesServer(
  path: string,
  handle: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => void,
): Promise<{ server: Server; port: number; stop(onStopped?: () => void): Promise<void> }> {
  const server = new Server();
  const definition: ServiceDefinition = {
    Method: { path, requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
  };
  server.addService(definition, { Method: handle });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound)));
  });
  const stop = (onStopped?: () => void): Promise<void> =>
    new Promise<void>((resolve) => {
      // A second at most to finish the calls in hand, then the rest are cut.
      const timer = setTimeout(() => {
        server.forceShutdown();
        onStopped?.();
        resolve();
      }, 1000);
      server.tryShutdown(() => {
        clearTimeout(timer);
        onStopped?.();
        resolve();
      });
    });
  return { server, port, stop };
}

/** A GetProduct request for the demo catalog's first product, as bytes: what every catalog-read section sends. */
export function getProductRequest(): { productId: string; request: Buffer } {
  const productId = demoCatalog[0]?.id;
  if (productId === undefined) throw new Error("the demo catalog is empty: nothing to read");
  return { productId, request: Buffer.from(toBinary(GetProductRequestSchema, create(GetProductRequestSchema, { productId }))) };
}
