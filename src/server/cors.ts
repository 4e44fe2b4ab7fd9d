/**
 * CORS for browser clients of Connect and gRPC-Web on other origins: answers preflights and
 * adds the allow/expose headers to actual responses. Header lists come from Connect's own
 * `cors` constants plus `Authorization` (the bearer token). No credentials mode: the token is
 * an explicit header, never a cookie.
 */
import { cors as connectCors } from "@connectrpc/connect";
import type { HttpRequest, HttpResponse } from "./http-types.ts";

export interface CorsOptions {
  /** Exact origins (e.g. "https://console.example"), or "*" for any. Empty: CORS off. */
  allowedOrigins: readonly string[];
  /** How long browsers may cache a preflight. Default 7200 (the largest Chromium honours). */
  maxAgeSeconds?: number;
}

export interface Cors {
  /**
   * Adds CORS headers for an allowed origin. Returns true when it has answered the request
   * itself (a preflight), false when the request should go on to its handler.
   */
  handle(req: HttpRequest, res: HttpResponse): boolean;
}

const ALLOW_METHODS = connectCors.allowedMethods.join(", ");
const ALLOW_HEADERS = [...connectCors.allowedHeaders, "Authorization"].join(", ");
const EXPOSE_HEADERS = connectCors.exposedHeaders.join(", ");

/** Returns undefined when no origin is allowed, so that the request path skips CORS entirely. */
export function createCors(options: CorsOptions): Cors | undefined {
  if (options.allowedOrigins.length === 0) return undefined;
  const anyOrigin = options.allowedOrigins.includes("*");
  const origins = new Set(options.allowedOrigins);
  const maxAge = String(options.maxAgeSeconds ?? 7200);

  return {
    handle(req, res) {
      const origin = req.headers.origin;
      if (origin === undefined) return false;
      const isPreflight = req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
      if (!anyOrigin) res.setHeader("vary", "Origin");
      const allowed = anyOrigin || origins.has(origin);
      if (allowed) res.setHeader("access-control-allow-origin", anyOrigin ? "*" : origin);
      if (!isPreflight) {
        if (allowed) res.setHeader("access-control-expose-headers", EXPOSE_HEADERS);
        return false;
      }
      // A refused origin still gets an answer (without allow headers, so the browser blocks
      // the call) rather than reaching an RPC handler that would reject OPTIONS.
      if (allowed) {
        res.setHeader("access-control-allow-methods", ALLOW_METHODS);
        res.setHeader("access-control-allow-headers", ALLOW_HEADERS);
        res.setHeader("access-control-max-age", maxAge);
      }
      res.writeHead(204);
      res.end();
      return true;
    },
  };
}
