/** The "New connection" form: URL, auto-reconnect, topic, tags and on-open messages. */
import { ConnectError, type ConnectResponse, type WebSocketManagerClient } from "../clients/ts/src/index.ts";
import { byId, h, replaceChildren } from "./dom.ts";
import { errorView, invalidArgumentView } from "./error-view.ts";
import { shortId } from "./format.ts";
import { parseMessageLines, parseTagLines } from "./parse-lines.ts";

export interface ConnectFormOptions {
  client: WebSocketManagerClient;
  /** After the service accepted the connection, with what the form asked for. */
  onConnected(response: ConnectResponse, request: { url: string; autoReconnect: boolean; tags: Record<string, string>; topic: string }): void;
  /** Every failed call, before it is shown. */
  onError(err: ConnectError): void;
}

export function createConnectForm(options: ConnectFormOptions): void {
  const form = byId<HTMLFormElement>("connect-form");
  const url = byId<HTMLInputElement>("connect-url");
  const autoReconnect = byId<HTMLInputElement>("connect-auto-reconnect");
  const topic = byId<HTMLInputElement>("connect-topic");
  const tags = byId<HTMLTextAreaElement>("connect-tags");
  const onOpen = byId<HTMLTextAreaElement>("connect-on-open");
  const submit = byId<HTMLButtonElement>("connect-submit");
  const result = byId("connect-result");

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const parsedTags = parseTagLines(tags.value);
    if (!parsedTags.ok) {
      replaceChildren(result, invalidArgumentView(parsedTags.error));
      return;
    }
    const request = { url: url.value.trim(), autoReconnect: autoReconnect.checked, tags: parsedTags.value, topic: topic.value.trim() };
    submit.disabled = true;
    result.className = "result";
    replaceChildren(result, `Connecting to ${request.url}…`);
    options.client
      .connect(request.url, { ...request, onOpen: parseMessageLines(onOpen.value) })
      .then(
        (response) => {
          result.className = "result ok";
          replaceChildren(result, `Connected: `, h("span", { class: "mono" }, shortId(response.id)));
          options.onConnected(response, request);
        },
        (err: unknown) => {
          const e = ConnectError.from(err);
          options.onError(e);
          result.className = "result";
          replaceChildren(result, errorView(e));
        },
      )
      .finally(() => {
        submit.disabled = false;
      });
  });
}
