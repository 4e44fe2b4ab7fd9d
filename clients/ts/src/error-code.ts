/**
 * Error helpers shared by the client's users: the gRPC name of a code (NOT_FOUND, as grpcurl and
 * the service's documentation spell it) and a one-line description of any error.
 */
import { Code, ConnectError } from "@connectrpc/connect";

/** `Code.NotFound` -> `"NOT_FOUND"`; an unknown number -> `"CODE_<n>"`. */
export function codeName(code: Code): string {
  const name = Code[code] as string | undefined;
  if (name === undefined) return `CODE_${code}`;
  return name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/**
 * `"NOT_FOUND: no connection with id ..."` for a ConnectError; anything else is converted the
 * way the client does it (`ConnectError.from`, code UNKNOWN unless it was an abort).
 */
export function describeError(err: unknown): string {
  const e = ConnectError.from(err);
  return `${codeName(e.code)}: ${e.rawMessage}`;
}
