/**
 * Serves the built web app (web/dist) from the gateway's own port, so the
 * browser's page and its Connect calls share one origin (no CORS needed).
 *
 * Written here rather than with `send`/`serve-static`: those drive an
 * HTTP/1.1 ServerResponse and its finish tracking (on-finished), which the
 * HTTP/2 compatibility response only partly provides, and this port serves
 * both. What is needed is small: GET and HEAD of a known handful of file
 * types, an index.html fallback for the app's client-side routes, long-lived
 * caching of content-hashed assets, and no way out of the directory.
 *
 * No way out includes symbolic links: a file is served only when its real
 * path (every link resolved) is inside the real path of the root. A link
 * inside the root to another file inside it is served (a deployment may
 * share assets that way, and it reveals nothing new); a link, or a linked
 * directory, leading anywhere else is answered 404 as if it did not exist.
 */
import { createReadStream } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import path from "node:path";
import type { EdgeRequest, EdgeResponse } from "./edge-server.js";

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".webmanifest": "application/manifest+json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".woff": "font/woff",
  ".txt": "text/plain; charset=utf-8",
};

/** Vite names built assets `name-<hash>.ext` under assets/: their content never changes under that name. */
const HASHED_ASSET = /^\/assets\/.+-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$/;
const IMMUTABLE = "public, max-age=31536000, immutable";
/**
 * For the app's page: scripts, styles and calls from this origin only (the
 * built app has no inline script), and no framing by other sites.
 */
const PAGE_POLICY = "default-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'";
/** index.html and unhashed files: always revalidated, so a new build shows at once. */
const REVALIDATE = "no-cache";

export interface StaticWeb {
  /**
   * Answers the request when its path is the web app's (not an RPC path):
   * GET and HEAD with the file, other methods with 405. Returns false to let
   * CORS and Connect answer (RPC paths, and preflights).
   */
  handle(request: EdgeRequest, response: EdgeResponse): boolean;
}

export interface StaticWebOptions {
  /** Absolute directory of the built app (its index.html at the top). */
  readonly root: string;
  readonly onError?: (error: unknown, url: string) => void;
}

/** A path that looks like a file (has an extension) gets 404 when missing; others are client routes. */
const looksLikeFile = (urlPath: string): boolean => path.posix.extname(urlPath) !== "";

/**
 * Connect unary GET requests, gRPC and gRPC-web all address `/package.Service/Method`;
 * those paths stay Connect's even for GET, so a Connect GET is never shadowed.
 */
const RPC_PATH = /^\/[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+\/[A-Za-z_]\w*$/;

export function createStaticWeb(options: StaticWebOptions): StaticWeb {
  const root = path.resolve(options.root);

  /** The file a URL path names inside root, or undefined when it is malformed or leaves root. */
  const fileFor = (urlPath: string): string | undefined => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(urlPath);
    } catch {
      return undefined;
    }
    if (decoded.includes("\0") || decoded.includes("\\")) return undefined;
    const file = path.resolve(root, `.${path.posix.normalize(decoded)}`);
    return file === root || file.startsWith(root + path.sep) ? file : undefined;
  };

  // Resolved once, on first use: the directory may be built after the gateway starts.
  let realRoot: Promise<string> | undefined;
  /** The real path of `file` when it lies inside the real root, else undefined. */
  const realInsideRoot = async (file: string): Promise<string | undefined> => {
    realRoot ??= realpath(root).catch(() => root);
    const [real, base] = await Promise.all([realpath(file).catch(() => undefined), realRoot]);
    if (real === undefined) return undefined;
    return real === base || real.startsWith(base + path.sep) ? real : undefined;
  };

  const send = async (request: EdgeRequest, response: EdgeResponse, urlPath: string): Promise<void> => {
    const file = fileFor(urlPath);
    if (file === undefined) return plain(response, 400, "Bad request path.\n");
    let target = file;
    let info = await stat(target).catch(() => undefined);
    if (info?.isDirectory()) {
      target = path.join(target, "index.html");
      info = await stat(target).catch(() => undefined);
    }
    if (info === undefined || !info.isFile()) {
      if (looksLikeFile(urlPath)) return plain(response, 404, "Not found.\n");
      // A client-side route (/orders/123): the app's page, which routes itself.
      target = path.join(root, "index.html");
      info = await stat(target).catch(() => undefined);
      if (info === undefined || !info.isFile()) {
        return plain(response, 404, `The web app is not built in ${root}: run \`npm run build -w @meshwork/web\` (npm start does it for you).\n`);
      }
    }
    // What is read is the resolved file itself, so the check and the read name the same file.
    const real = await realInsideRoot(target);
    if (real === undefined) return plain(response, 404, "Not found.\n");
    const etag = `W/"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
    const headers: Record<string, string> = {
      "content-type": CONTENT_TYPES[path.extname(target).toLowerCase()] ?? "application/octet-stream",
      "cache-control": HASHED_ASSET.test(urlPath) && target === file ? IMMUTABLE : REVALIDATE,
      etag,
      "last-modified": info.mtime.toUTCString(),
      "x-content-type-options": "nosniff",
    };
    if (target.endsWith(".html")) {
      headers["content-security-policy"] = PAGE_POLICY;
      headers["referrer-policy"] = "same-origin";
    }
    if (request.headers["if-none-match"] === etag) {
      response.writeHead(304, headers);
      response.end();
      return;
    }
    headers["content-length"] = String(info.size);
    response.writeHead(200, headers);
    if (request.method === "HEAD") {
      response.end();
      return;
    }
    const stream = createReadStream(real);
    // A client that hangs up mid-file must not leave the file open.
    response.once("close", () => stream.destroy());
    stream.once("error", (error) => {
      options.onError?.(error, urlPath);
      response.destroy();
    });
    stream.pipe(response as NodeJS.WritableStream);
  };

  return {
    handle(request, response) {
      const urlPath = (request.url ?? "/").split("?")[0]!.split("#")[0]!;
      if (RPC_PATH.test(urlPath) || !urlPath.startsWith("/")) return false;
      // CORS preflights stay with the CORS policy; any other method on a page path is not for pages.
      if (request.method === "OPTIONS") return false;
      if (request.method !== "GET" && request.method !== "HEAD") {
        response.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
        response.end("Only GET and HEAD are served here; RPCs are POSTed to /<package>.<Service>/<Method>.\n");
        return true;
      }
      send(request, response, urlPath).catch((error: unknown) => {
        options.onError?.(error, urlPath);
        if (!response.headersSent) plain(response, 500, "Internal error.\n");
        else response.destroy();
      });
      return true;
    },
  };
}

function plain(response: EdgeResponse, status: number, text: string): void {
  response.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff" });
  response.end(text);
}

/** The repository root (this file is services/gateway/src/static-web.ts). */
const REPO_ROOT = path.resolve(import.meta.dirname, "../../..");

/** GATEWAY_WEB_DIR as an absolute directory: relative paths are taken from the repository root, whatever the working directory. */
export const resolveWebDir = (setting: string): string => path.resolve(REPO_ROOT, setting);
