/** How the console shows a failed call: the gRPC code name in bold, then the service's message. */
import { codeName, ConnectError } from "../clients/ts/src/index.ts";
import { h } from "./dom.ts";

export function errorView(err: unknown): HTMLElement {
  const e = ConnectError.from(err);
  return h("span", { class: "error", "data-code": codeName(e.code) }, h("span", { class: "code" }, codeName(e.code)), e.rawMessage);
}

/** A local validation failure, shown like a service error with INVALID_ARGUMENT. */
export function invalidArgumentView(message: string): HTMLElement {
  return h("span", { class: "error", "data-code": "INVALID_ARGUMENT" }, h("span", { class: "code" }, "INVALID_ARGUMENT"), message);
}
