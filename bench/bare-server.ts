import { startBytesServer } from "./bytes-server.js";
import type { RunningServer } from "./running-server.js";
import { BARE_METHOD_PATH } from "./server-protocol.js";

/**
 * Server B, the floor: a grpc-js server with default options and one unary
 * method that answers every call with the same precomputed bytes. What it
 * costs per call is what grpc-js and HTTP/2 cost; the platform host's extra
 * over it is everything Meshwork adds.
 */
export async function startBareServer(response: Buffer): Promise<RunningServer> {
  let served = 0;
  const { port, stop } = await startBytesServer(BARE_METHOD_PATH, (_call, callback) => {
    served++;
    callback(null, response);
  });
  return { port, served: () => served, stop: () => stop() };
}
