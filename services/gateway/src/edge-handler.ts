/**
 * The HTTP layer in front of Connect: a plain health probe, CORS, and an
 * early, cheap refusal of Connect requests whose declared size is too large.
 */
import { acceptRequestId } from "@meshwork/platform";
import type { CorsPolicy } from "./cors.js";
import type { EdgeHandler } from "./edge-server.js";
import { REQUEST_ID_HEADER } from "./request-id.js";
import type { StaticWeb } from "./static-web.js";

export interface EdgeHandlerOptions {
  /** Connect's node adapter. */
  readonly connect: EdgeHandler;
  readonly cors: CorsPolicy;
  readonly maxRequestBytes: number;
  /** False once shutdown started: the probe answers 503 so a load balancer stops sending. */
  readonly serving: () => boolean;
  /** The built web app, answering GET and HEAD outside the RPC paths; none when unset. */
  readonly web?: StaticWeb;
}

/** `GET /healthz`: for load balancers and Kubernetes httpGet probes, which Linkerd authorizes without a policy. */
export const HEALTHZ_PATH = "/healthz";

// Connect unary requests; streaming (application/connect+...) and gRPC bodies
// are enveloped, with a size per message, and left to Connect's readMaxBytes.
const CONNECT_UNARY = /^application\/(json|proto)(;|$)/i;

export function createEdgeHandler(options: EdgeHandlerOptions): EdgeHandler {
  return (request, response) => {
    if (request.url === HEALTHZ_PATH && (request.method === "GET" || request.method === "HEAD")) {
      const serving = options.serving();
      response.writeHead(serving ? 200 : 503, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
      response.end(serving ? "serving\n" : "shutting down\n");
      return;
    }
    if (options.web?.handle(request, response)) return;

    const verdict = options.cors.judge(request.method, request.headers);
    if (verdict.kind === "preflight") {
      response.writeHead(verdict.status, verdict.headers);
      response.end();
      return;
    }
    if (verdict.kind === "allow") {
      for (const [name, value] of Object.entries(verdict.headers)) if (value !== undefined) response.setHeader(name, value);
    }

    // Connect itself refuses this too, as RESOURCE_EXHAUSTED, which its
    // protocol maps to HTTP 429 ("slow down"). For a body that is simply too
    // large, 413 is the answer HTTP clients and proxies understand; the JSON
    // body is a Connect error, so Connect clients still see RESOURCE_EXHAUSTED.
    const declared = Number(request.headers["content-length"]);
    if (request.method === "POST" && declared > options.maxRequestBytes && CONNECT_UNARY.test(request.headers["content-type"] ?? "")) {
      const requestId = acceptRequestId(request.headers[REQUEST_ID_HEADER]);
      response.writeHead(413, { "content-type": "application/json", [REQUEST_ID_HEADER]: requestId });
      response.end(JSON.stringify({ code: "resource_exhausted", message: `request of ${declared} bytes is larger than the ${options.maxRequestBytes} bytes accepted` }));
      return;
    }

    options.connect(request, response);
  };
}
