import { Client, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { startBytesServer } from "./bytes-server.js";
import type { RunningServer } from "./running-server.js";

/** Bytes in, bytes out: the proxy neither decodes nor encodes anything. */
const identity = (bytes: Buffer): Buffer => bytes;

/** The catalog's own path, so a client calls the proxy exactly as it calls the catalog. */
export const GET_PRODUCT_PATH = `/${CatalogService.typeName}/${CatalogService.method.getProduct.name}`;

/**
 * The edge's floor: the least a gRPC hop in front of the catalog can do. A
 * grpc-js server (default options) whose one method passes the request
 * bytes on to the catalog over one grpc-js client connection, with the
 * caller's deadline, and hands the answer (or the status) back. No
 * decoding, no headers passed on, no checks: what is left is what grpc-js
 * and HTTP/2 cost on both sides of a hop. The gateway's extra over it is
 * everything the edge adds.
 */
export async function startBareProxy(upstream: string): Promise<RunningServer> {
  const client = new Client(upstream, credentials.createInsecure(), {});
  let served = 0;
  const { port, stop } = await startBytesServer(GET_PRODUCT_PATH, (call, callback) => {
    client.makeUnaryRequest<Buffer, Buffer>(GET_PRODUCT_PATH, identity, identity, call.request, new Metadata(), { deadline: call.getDeadline() }, (error: ServiceError | null, response?: Buffer) => {
      served++;
      if (error) callback(error);
      else callback(null, response);
    });
  });
  return { port, served: () => served, stop: () => stop(() => client.close()) };
}
