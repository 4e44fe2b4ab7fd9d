/**
 * An interceptor that sends `Authorization: Bearer <token>` on every call, for a service
 * started with an auth token. Browser-safe: no Node imports.
 */
import type { Interceptor } from "@connectrpc/connect";

/**
 * The token, or a function that returns it at the time of each call (the web console reads
 * it from sessionStorage, so that a token entered later applies to the next call). An empty
 * or missing token sends no header: the service then answers UNAUTHENTICATED when it needs one.
 */
export type TokenSource = string | (() => string | null | undefined);

export function createBearerTokenInterceptor(token: TokenSource): Interceptor {
  return (next) => async (req) => {
    const value = typeof token === "function" ? token() : token;
    // A caller's own Authorization header (per call) wins over the configured token.
    if (value && !req.header.has("authorization")) req.header.set("authorization", `Bearer ${value}`);
    return next(req);
  };
}
