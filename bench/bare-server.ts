import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall, type ServiceDefinition } from "@grpc/grpc-js";
import type { RunningServer } from "./running-server.js";
import { BARE_METHOD_PATH } from "./server-protocol.js";

/** Bytes in, bytes out: the bare server neither decodes nor encodes anything. */
const identity = (bytes: Buffer): Buffer => bytes;

/**
 * Server B, the floor: a grpc-js server with default options and one unary
 * method that answers every call with the same precomputed bytes. What it
 * costs per call is what grpc-js and HTTP/2 cost; the platform host's extra
 * over it is everything Meshwork adds.
 */
export async function startBareServer(response: Buffer): Promise<RunningServer> {
  const server = new Server();
  const definition: ServiceDefinition = {
    Echo: {
      path: BARE_METHOD_PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  };
  let served = 0;
  server.addService(definition, {
    Echo: (_call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
      served++;
      callback(null, response);
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound)));
  });
  return {
    port,
    served: () => served,
    stop: () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
