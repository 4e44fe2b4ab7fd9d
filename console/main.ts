/**
 * The web console's entry: wires the client, the two Subscribe streams, the table, the details
 * panel, the connect form, the live tail and the token dialog.
 *
 * Two streams, not one: the status stream (lifecycle events plus a snapshot every second)
 * stays small and prompt however busy the feeds are, while the tail stream carries the
 * messages; a browser that falls behind a feed then never delays the table.
 *
 * The page talks to the service it was served by (same origin, so no CORS), over gRPC-Web by
 * default or Connect with `?protocol=connect`; both work over plain HTTP/1.1.
 */
import { Code, createWebClient, describeError, type ConnectError } from "../clients/ts/src/index.ts";
import { createConnectForm } from "./connect-form.ts";
import { createConnectionDetails } from "./connection-details.ts";
import { createConnectionStore } from "./connection-store.ts";
import { createConnectionTable } from "./connection-table.ts";
import { byId } from "./dom.ts";
import { createEventStream, type StreamState } from "./event-stream.ts";
import { createMessageTail } from "./message-tail.ts";
import { createTokenDialog } from "./token-dialog.ts";
import { createTokenStore } from "./token-store.ts";

/** How often the status stream sends a snapshot: the period of rates and statistics. */
const SNAPSHOT_INTERVAL_MS = 1000;
/**
 * The tail stream asks for snapshots only to learn that it is established (the first comes at
 * once); the later ones are rare and ignored.
 */
const TAIL_SNAPSHOT_INTERVAL_MS = 3_600_000;

function start(): void {
  const params = new URLSearchParams(location.search);
  const protocol = params.get("protocol") === "connect" ? "connect" : "grpc-web";
  // The directory the page was served from: works behind a proxy that adds a path prefix.
  const baseUrl = new URL(".", location.href).href.replace(/\/$/, "");
  const tokens = createTokenStore(globalThis.sessionStorage);
  const client = createWebClient({ baseUrl, protocol, token: () => tokens.get(), defaultDeadlineMs: 60_000 });

  const store = createConnectionStore();
  let selectedId: string | undefined;

  const streams: Array<{ restart(): void }> = [];
  const tokenDialog = createTokenDialog({
    tokens,
    onChange: () => {
      for (const s of streams) s.restart();
    },
  });
  const onError = (err: ConnectError) => {
    if (err.code === Code.Unauthenticated) {
      tokenDialog.open(
        tokens.get() === undefined
          ? "This service requires a bearer token. It is kept in this tab only (sessionStorage)."
          : `The service refused the token (${describeError(err)}). Enter the right one.`,
      );
    }
  };

  const select = (id: string | undefined) => {
    selectedId = id;
    table.setSelected(id);
    details.show(id);
    tail.selectionChanged();
  };

  const table = createConnectionTable({
    body: byId<HTMLTableSectionElement>("connections-body"),
    empty: byId("connections-empty"),
    count: byId("connection-count"),
    store,
    onSelect: (id) => select(id),
  });
  const details = createConnectionDetails({
    root: byId("details-body"),
    client,
    store,
    onDisconnected: (id) => store.removed(id),
    onError,
  });
  const tail = createMessageTail({
    rows: byId("tail-rows"),
    stats: byId("tail-stats"),
    filter: byId<HTMLInputElement>("tail-filter"),
    selectedOnly: byId<HTMLInputElement>("tail-selected-only"),
    pause: byId<HTMLButtonElement>("tail-pause"),
    clear: byId<HTMLButtonElement>("tail-clear"),
    selectedId: () => selectedId,
  });
  createConnectForm({
    client,
    onConnected: (response, request) => {
      store.added(response.id, { ...request, status: response.status });
      select(response.id);
    },
    onError,
  });

  // Renders at most once per frame however many events arrive.
  let renderQueued = false;
  store.onChange(() => {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      table.render();
      details.refresh();
      summary();
    });
  });

  const stateEl = byId("stream-state");
  const stateText = byId("stream-state-text");
  const summaryEl = byId("summary");
  const summary = () => {
    const list = store.list();
    const count = (status: string) => list.filter((c) => c.status === status).length;
    const parts = [`${count("connected")} connected`];
    if (count("reconnecting") > 0) parts.push(`${count("reconnecting")} reconnecting`);
    if (count("disconnected") > 0) parts.push(`${count("disconnected")} disconnected`);
    summaryEl.textContent = list.length === 0 ? "" : parts.join(" · ");
  };
  const showState = (state: StreamState) => {
    stateEl.dataset.state = state.kind;
    switch (state.kind) {
      case "connecting":
        stateText.textContent = "Connecting…";
        break;
      case "live":
        stateText.textContent = `Live · ${protocol === "connect" ? "Connect" : "gRPC-Web"}`;
        break;
      case "retrying":
        stateText.textContent = `Retrying in ${Math.ceil(state.delayMs / 1000)}s · ${describeError(state.error)}`;
        break;
      case "unauthenticated":
        stateText.textContent = "Token required";
        onError(state.error);
        break;
      case "stopped":
        stateText.textContent = "Stopped";
        break;
    }
  };

  streams.push(
    createEventStream({
      client,
      filter: { excludeMessages: true, snapshotIntervalMs: SNAPSHOT_INTERVAL_MS },
      onEvent: (ev) => {
        if (ev.event.case === "snapshot") store.applySnapshot(ev.event.value.connections, performance.now());
        else if (ev.event.case === "lifecycle") store.applyLifecycle(ev.event.value);
      },
      onState: showState,
    }),
    createEventStream({
      client,
      filter: { excludeLifecycle: true, snapshotIntervalMs: TAIL_SNAPSHOT_INTERVAL_MS },
      onEvent: (ev) => {
        if (ev.event.case === "message") tail.push(ev.event.value);
      },
      // The header shows the status stream's state; both fail and recover together.
      onState: () => {},
    }),
  );
  for (const s of streams) s.restart();
}

start();
