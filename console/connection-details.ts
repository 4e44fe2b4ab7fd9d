/**
 * The panel of the selected connection: its facts (refreshed from the store) and what can be
 * done with it: send and wait for the reply, send raw, publish to a topic, reconnect,
 * disconnect. The inputs are built once per selection, so refreshes never wipe what the
 * reader is typing.
 */
import { Code, ConnectError, OCTET_STREAM, type WebSocketManagerClient } from "../clients/ts/src/index.ts";
import type { ConnectionStore, ConnectionView } from "./connection-store.ts";
import { h, replaceChildren } from "./dom.ts";
import { errorView } from "./error-view.ts";
import { formatClock, formatCount, formatDuration, formatRate, prettyJson, timestampMs } from "./format.ts";

export interface ConnectionDetailsOptions {
  root: HTMLElement;
  client: WebSocketManagerClient;
  store: ConnectionStore;
  /** After a Disconnect of ours succeeded. */
  onDisconnected(id: string): void;
  /** Every failed call, before it is shown (the page asks for a token on UNAUTHENTICATED). */
  onError(err: ConnectError): void;
}

export interface ConnectionDetails {
  show(id: string | undefined): void;
  /** Updates the facts of the shown connection from the store. */
  refresh(): void;
}

const DEFAULT_TIMEOUT_MS = 5000;

export function createConnectionDetails(options: ConnectionDetailsOptions): ConnectionDetails {
  const { root, client, store } = options;
  let shownId: string | undefined;
  let facts: { update(c: ConnectionView): void } | undefined;

  /** Runs a call with its button disabled and shows the outcome in `result`. */
  const run = async (
    button: HTMLButtonElement,
    result: HTMLElement,
    call: () => Promise<string | Node | undefined>,
  ): Promise<void> => {
    button.disabled = true;
    result.className = "result";
    replaceChildren(result, "…");
    try {
      const outcome = await call();
      result.className = "result ok";
      replaceChildren(result, outcome ?? "");
    } catch (err) {
      const e = ConnectError.from(err);
      options.onError(e);
      result.className = "result";
      replaceChildren(result, errorView(e));
    } finally {
      button.disabled = false;
    }
  };

  const buildFacts = () => {
    const dl = h("dl", { class: "facts" });
    const values = new Map<string, HTMLElement>();
    const row = (label: string) => {
      const dd = h("dd", { "data-fact": label });
      values.set(label, dd);
      dl.append(h("dt", {}, label), dd);
    };
    for (const label of ["Id", "Auto-reconnect", "Subprotocol", "Topic", "Connected for", "Last message", "Messages", "Bytes", "Rate", "Published", "Reconnects", "Pending sends", "Tags", "Last error"]) {
      row(label);
    }
    const set = (label: string, text: string) => {
      const el = values.get(label)!;
      if (el.textContent !== text) el.textContent = text;
    };
    return {
      dl,
      update(c: ConnectionView) {
        const s = c.stats;
        const now = Date.now();
        set("Id", c.id);
        set("Auto-reconnect", c.autoReconnect ? "on" : "off");
        set("Subprotocol", c.protocol || "none");
        set("Topic", c.topic || "not publishing");
        const since = timestampMs(s?.connectedSince);
        set("Connected for", since > 0 ? formatDuration(now - since) : "–");
        const last = timestampMs(s?.lastMessageAt);
        set("Last message", last > 0 ? `${formatClock(last)} (${formatDuration(now - last)} ago)` : "–");
        set("Messages", s ? `${formatCount(s.messagesIn)} in · ${formatCount(s.messagesOut)} out` : "–");
        set("Bytes", s ? `${formatCount(s.bytesIn)} in · ${formatCount(s.bytesOut)} out` : "–");
        set("Rate", c.rates ? `${formatRate(c.rates.inPerSecond)} in/s · ${formatRate(c.rates.outPerSecond)} out/s` : "–");
        set(
          "Published",
          s ? `${formatCount(s.published)} · dropped ${formatCount(s.publishDropped)} · failed ${formatCount(s.publishFailed)}` : "–",
        );
        set("Reconnects", s ? `${formatCount(s.reconnects)}${s.reconnectAttempt > 0 ? ` · attempt ${s.reconnectAttempt}` : ""}` : "–");
        set("Pending sends", s ? String(s.pendingSends) : "–");
        const tags = Object.entries(c.tags);
        set("Tags", tags.length ? tags.map(([k, v]) => `${k}=${v}`).join(", ") : "none");
        set("Last error", c.lastError || "none");
      },
    };
  };

  const build = (c: ConnectionView) => {
    const id = c.id;
    const status = h("span", { class: "status", id: "details-status", "data-status": c.status }, c.status);
    const url = h("div", { class: "conn-url", id: "details-url" }, c.url);
    const f = buildFacts();

    // Send
    const message = h("textarea", { id: "send-message", rows: 4, spellcheck: "false", placeholder: '{"method":"ping"}' });
    const contentType = h(
      "select",
      { id: "send-content-type", "aria-label": "Content type" },
      h("option", { value: "" }, "Text / JSON"),
      h("option", { value: OCTET_STREAM }, "Binary (base64)"),
    );
    const timeout = h("input", { id: "send-timeout", type: "number", min: 0, step: 100, value: DEFAULT_TIMEOUT_MS, "aria-label": "Reply timeout in milliseconds" });
    const sendButton = h("button", { type: "button", class: "primary", id: "send-submit" }, "Send & wait");
    const rawButton = h("button", { type: "button", id: "send-raw-submit" }, "Send raw");
    const sendResult = h("div", { class: "result", id: "send-result", role: "status" });
    const requireMessage = () => {
      if (message.value === "") throw new ConnectError("the message is empty", Code.InvalidArgument);
      return message.value;
    };
    sendButton.addEventListener("click", () =>
      run(sendButton, sendResult, async () => {
        const text = requireMessage();
        const started = performance.now();
        const timeoutMs = Number(timeout.value || 0);
        const reply = await client.send(id, text, { timeoutMs, contentType: contentType.value });
        const ms = Math.round(performance.now() - started);
        const body = reply.contentType === OCTET_STREAM ? reply.response : prettyJson(reply.response);
        return h(
          "div",
          {},
          h("div", {}, `Reply in ${ms} ms${reply.contentType ? ` · ${reply.contentType}` : ""}`),
          h("pre", { class: "reply", id: "send-reply" }, body),
        );
      }),
    );
    rawButton.addEventListener("click", () =>
      run(rawButton, sendResult, async () => {
        await client.sendRaw(id, requireMessage(), { contentType: contentType.value });
        return `Sent at ${formatClock(Date.now())}`;
      }),
    );

    // Publish
    const topic = h("input", { id: "publish-topic", type: "text", placeholder: "topic", spellcheck: "false", value: c.topic, "aria-label": "Topic" });
    const startButton = h("button", { type: "button", id: "publish-start" }, "Start");
    const stopButton = h("button", { type: "button", id: "publish-stop" }, "Stop");
    const publishResult = h("div", { class: "result", id: "publish-result", role: "status" });
    startButton.addEventListener("click", () =>
      run(startButton, publishResult, async () => {
        await client.startPublish(id, topic.value.trim());
        return `Publishing to ${topic.value.trim()}`;
      }),
    );
    stopButton.addEventListener("click", () =>
      run(stopButton, publishResult, async () => {
        await client.stopPublish(id);
        return "Stopped publishing";
      }),
    );

    // Lifecycle
    const reconnectButton = h("button", { type: "button", id: "reconnect-submit" }, "Reconnect");
    const disconnectButton = h("button", { type: "button", class: "danger", id: "disconnect-submit" }, "Disconnect");
    const actionResult = h("div", { class: "result", id: "action-result", role: "status" });
    reconnectButton.addEventListener("click", () =>
      run(reconnectButton, actionResult, async () => {
        const r = await client.reconnect(id);
        return `Reconnected: ${r.status}`;
      }),
    );
    disconnectButton.addEventListener("click", () =>
      run(disconnectButton, actionResult, async () => {
        await client.disconnect(id);
        options.onDisconnected(id);
        return "Disconnected";
      }),
    );

    replaceChildren(
      root,
      h("div", { class: "details-head" }, h("div", {}, status), url),
      f.dl,
      h(
        "div",
        { class: "subsection" },
        h("h3", {}, "Send"),
        message,
        h("div", { class: "inline" }, contentType, h("label", { class: "check" }, "Timeout ms", timeout)),
        h("div", { class: "actions" }, sendButton, rawButton),
        sendResult,
      ),
      h("div", { class: "subsection" }, h("h3", {}, "Publish to a topic"), h("div", { class: "inline" }, topic, startButton, stopButton), publishResult),
      h("div", { class: "subsection" }, h("div", { class: "actions" }, reconnectButton, h("div", { class: "spacer" }), disconnectButton), actionResult),
    );
    facts = {
      update(view) {
        if (status.textContent !== view.status) status.textContent = view.status;
        status.dataset.status = view.status;
        if (url.textContent !== view.url) url.textContent = view.url;
        f.update(view);
      },
    };
    facts.update(c);
  };

  return {
    show(id) {
      shownId = id;
      facts = undefined;
      const c = id === undefined ? undefined : store.get(id);
      if (!c) {
        replaceChildren(root, h("p", { class: "empty" }, "Select a connection in the table."));
        return;
      }
      build(c);
    },
    refresh() {
      if (shownId === undefined) return;
      const c = store.get(shownId);
      if (!c) {
        shownId = undefined;
        facts = undefined;
        replaceChildren(root, h("p", { class: "empty" }, "The connection is gone. Select another one in the table."));
        return;
      }
      facts?.update(c);
    },
  };
}
