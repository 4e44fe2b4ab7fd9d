/**
 * Plain HTTP on the RPC port, for whatever is not an RPC path: `/healthz` (alive),
 * `/readyz` (ready to serve), `/metrics` (Prometheus; needs the token when one is set), then
 * the optional extra handler (a web console), else 404.
 */
import type { Metrics } from "../metrics.ts";
import { PROMETHEUS_CONTENT_TYPE } from "../metrics.ts";
import type { Health } from "./health.ts";
import type { HttpHandler, HttpRequest, HttpResponse } from "./http-types.ts";

export interface ExtraHttpContext {
  /** True when no token is configured or the request carries it. */
  readonly authorized: boolean;
}

/** Returns true when it has handled the request. */
export type ExtraHttpHandler = (req: HttpRequest, res: HttpResponse, context: ExtraHttpContext) => boolean;

export interface HttpEndpointsOptions {
  health: Health;
  metrics: Metrics;
  /** Decides whether a request may read `/metrics` (and tells the extra handler). */
  isAuthorized: (req: HttpRequest) => boolean;
  extraHttpHandler?: ExtraHttpHandler;
}

const JSON_TYPE = "application/json";

export function createHttpEndpoints(options: HttpEndpointsOptions): HttpHandler {
  const { health, metrics, isAuthorized, extraHttpHandler } = options;

  return (req, res) => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    const isRead = req.method === "GET" || req.method === "HEAD";

    switch (path) {
      case "/healthz":
        if (!isRead) return methodNotAllowed(res);
        return send(res, 200, JSON_TYPE, '{"status":"ok"}');
      case "/readyz": {
        if (!isRead) return methodNotAllowed(res);
        const report = health.evaluate();
        if (report.serving) return send(res, 200, JSON_TYPE, '{"status":"ready"}');
        const reason = report.shuttingDown ? "shutting down" : `failing checks: ${report.failing.join(", ")}`;
        return send(res, 503, JSON_TYPE, JSON.stringify({ status: "not_ready", reason, failing: report.failing }));
      }
      case "/metrics":
        if (!isRead) return methodNotAllowed(res);
        if (!isAuthorized(req)) return unauthorized(res);
        return send(res, 200, PROMETHEUS_CONTENT_TYPE, metrics.render());
    }
    if (extraHttpHandler !== undefined && extraHttpHandler(req, res, { authorized: isAuthorized(req) })) return;
    send(res, 404, JSON_TYPE, '{"error":"not found"}');
  };
}

function send(res: HttpResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, {
    "content-type": contentType,
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
  });
  // A HEAD response carries the headers of the GET but no body.
  if (res.req.method === "HEAD") res.end();
  else res.end(body);
}

function methodNotAllowed(res: HttpResponse): void {
  res.setHeader("allow", "GET, HEAD");
  send(res, 405, JSON_TYPE, '{"error":"method not allowed"}');
}

function unauthorized(res: HttpResponse): void {
  res.setHeader("www-authenticate", "Bearer");
  send(res, 401, JSON_TYPE, '{"error":"missing or invalid bearer token"}');
}
