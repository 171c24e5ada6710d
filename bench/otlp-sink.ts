import { createServer } from "node:http";
import type { RunningServer } from "./running-server.js";

/**
 * Where the observability section's servers export their spans: an OTLP/HTTP
 * endpoint in a process of its own that reads each POST to /v1/traces whole
 * and answers it as a collector that took every span would (200, an empty
 * ExportTraceServiceResponse). So the servers pay what exporting really costs
 * them (turning spans into OTLP and sending them), and what a collector pays
 * for receiving them stays out of their figures. `served` counts the export
 * requests. Written here: a collector is not something npm or Debian offers,
 * and discarding a body is a few lines.
 */
export async function startOtlpSink(): Promise<RunningServer> {
  let requests = 0;
  const server = createServer((request, response) => {
    request.resume().on("end", () => {
      const traces = request.url === "/v1/traces";
      if (traces) requests += 1;
      response.writeHead(traces ? 200 : 404, { "content-type": "application/json" }).end("{}");
    });
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") reject(new Error("the OTLP sink has no TCP port"));
      else resolve(address.port);
    });
  });
  return {
    port,
    served: () => requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
