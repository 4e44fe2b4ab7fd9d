/**
 * Serves the web console (`console/`) at `/` on the RPC port.
 *
 * The page is bundled in memory with esbuild, once, on the first request (or `warm()`),
 * rather than by a build script into a folder:
 * - it is always the console of the running sources: no stale bundle, no build step to
 *   forget, in keeping with a server that Node runs from its .ts files directly;
 * - start-up does not wait for it and a service whose console nobody opens never builds it
 *   (esbuild is imported only then), so tests and headless deployments pay nothing;
 * - the bundle takes a few hundred milliseconds to build and is then served from memory,
 *   gzip-compressed once, with ETags so that reloads revalidate cheaply.
 *
 * The static files need no token: they hold no data. Every RPC the page makes does; the page
 * asks for the token when the service answers UNAUTHENTICATED.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { Logger } from "../logger.ts";
import type { ExtraHttpHandler } from "../server/http-endpoints.ts";
import type { HttpResponse } from "../server/http-types.ts";

export interface ConsoleHandlerOptions {
  /** Folder of the console's sources (index.html, main.ts, console.css, favicon.svg). Default: the repository's `console/`. */
  sourceDir?: string;
  /** Logs a failed build. Default: none. */
  logger?: Logger;
  /** Minify the bundle. Default true; false makes the page easier to debug. */
  minify?: boolean;
}

export interface ConsoleHandler {
  /** The server's extra HTTP handler: claims GET and HEAD of the console's paths only. */
  handle: ExtraHttpHandler;
  /** Builds the bundle now instead of on the first request. Resolves when done; never rejects. */
  warm(): Promise<void>;
}

interface Asset {
  body: Buffer;
  gzip: Buffer | undefined;
  contentType: string;
  etag: string;
}

// The page loads nothing but its own files and talks only to its own origin.
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** Paths of the bundle; "/" is index.html. */
const PATHS = new Set(["/console.js", "/console.js.map", "/console.css", "/console.css.map", "/favicon.svg"]);

const DEFAULT_SOURCE_DIR = fileURLToPath(new URL("../../console/", import.meta.url));

export function createConsoleHandler(options: ConsoleHandlerOptions = {}): ConsoleHandler {
  const sourceDir = options.sourceDir ?? DEFAULT_SOURCE_DIR;
  let building: Promise<Map<string, Asset>> | undefined;

  const assets = (): Promise<Map<string, Asset>> => {
    building ??= buildAssets(sourceDir, options.minify ?? true).catch((err: unknown) => {
      // The next request tries again (e.g. after a source was fixed).
      building = undefined;
      options.logger?.error("web console build failed", { err: String(err) });
      throw err;
    });
    return building;
  };

  const handle: ExtraHttpHandler = (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    let path = q < 0 ? url : url.slice(0, q);
    if (path === "/index.html") path = "/";
    if (path !== "/" && !PATHS.has(path)) return false;
    assets().then(
      (map) => {
        const asset = map.get(path);
        if (!asset) return sendText(res, 404, "not found");
        serve(req.headers, res, asset);
      },
      (err: unknown) => sendText(res, 500, `web console unavailable: ${(err as Error).message ?? String(err)}`),
    );
    return true;
  };

  return {
    handle,
    warm: () => assets().then(
      () => undefined,
      () => undefined,
    ),
  };
}

async function buildAssets(sourceDir: string, minify: boolean): Promise<Map<string, Asset>> {
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    entryPoints: [
      { in: join(sourceDir, "main.ts"), out: "console" },
      { in: join(sourceDir, "console.css"), out: "console" },
    ],
    bundle: true,
    write: false,
    outdir: "/console",
    format: "esm",
    platform: "browser",
    // Browsers of the last few years: native classes, private fields, async iteration.
    target: ["es2022", "chrome100", "firefox100", "safari16"],
    minify,
    sourcemap: "linked",
    legalComments: "none",
    logLevel: "silent",
  });
  const map = new Map<string, Asset>();
  for (const file of result.outputFiles) {
    const name = file.path.slice(file.path.lastIndexOf("/"));
    map.set(name, asset(Buffer.from(file.contents), contentTypeOf(name)));
  }
  map.set("/", asset(await readFile(join(sourceDir, "index.html")), "text/html; charset=utf-8"));
  map.set("/favicon.svg", asset(await readFile(join(sourceDir, "favicon.svg")), "image/svg+xml"));
  return map;
}

function asset(body: Buffer, contentType: string): Asset {
  const gzip = body.length > 1024 ? gzipSync(body, { level: 9 }) : undefined;
  const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
  return { body, gzip: gzip && gzip.length < body.length ? gzip : undefined, contentType, etag };
}

function contentTypeOf(name: string): string {
  if (name.endsWith(".js")) return "text/javascript; charset=utf-8";
  if (name.endsWith(".css")) return "text/css; charset=utf-8";
  if (name.endsWith(".map")) return "application/json";
  return "application/octet-stream";
}

function serve(requestHeaders: Record<string, string | string[] | undefined>, res: HttpResponse, a: Asset): void {
  if (res.writableEnded || res.destroyed) return;
  const headers: Record<string, string | number> = {
    "content-type": a.contentType,
    // Always revalidate: a restarted service may serve another console; the ETag keeps it cheap.
    "cache-control": "no-cache",
    etag: a.etag,
    vary: "accept-encoding",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  };
  if (a.contentType.startsWith("text/html")) {
    headers["content-security-policy"] = CONTENT_SECURITY_POLICY;
    headers["x-frame-options"] = "DENY";
  }
  if (requestHeaders["if-none-match"] === a.etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const acceptEncoding = String(requestHeaders["accept-encoding"] ?? "");
  const body = a.gzip && /\bgzip\b/.test(acceptEncoding) ? a.gzip : a.body;
  if (body === a.gzip) headers["content-encoding"] = "gzip";
  headers["content-length"] = body.length;
  res.writeHead(200, headers);
  if (res.req.method === "HEAD") res.end();
  else res.end(body);
}

function sendText(res: HttpResponse, status: number, text: string): void {
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(text), "cache-control": "no-store" });
  if (res.req.method === "HEAD") res.end();
  else res.end(text);
}
