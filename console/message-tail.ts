/**
 * The live tail of inbound messages. Feeds of thousands of messages per second must not
 * freeze the page, so:
 * - `push` only appends to arrays; the DOM is touched once per animation frame, in one batch;
 * - at most `maxRows` rows live in the DOM (the oldest are removed), and a frame never renders
 *   more than that, however many messages arrived since the last one;
 * - the history kept for re-filtering and resuming is bounded too.
 * Paused, it keeps counting and remembering, and shows the newest rows on resume.
 */
import type { InboundMessage } from "../clients/ts/src/index.ts";
import { h } from "./dom.ts";
import { formatClock, formatCount, formatRate, shortId, timestampMs } from "./format.ts";

export interface MessageTailOptions {
  rows: HTMLElement;
  stats: HTMLElement;
  filter: HTMLInputElement;
  selectedOnly: HTMLInputElement;
  pause: HTMLButtonElement;
  clear: HTMLButtonElement;
  /** The selected connection, for "selected only". */
  selectedId(): string | undefined;
  /** Rows kept in the DOM. Default 500. */
  maxRows?: number;
  /** Messages remembered for re-filtering and resume. Default 5000. */
  historySize?: number;
  /** Characters of a message shown in a row; the rest is cut with an ellipsis. Default 2000. */
  maxChars?: number;
  /** Schedules a render; tests of this module may pass their own. Default requestAnimationFrame. */
  schedule?: (render: () => void) => void;
}

export interface MessageTail {
  push(message: InboundMessage): void;
  /** Re-applies "selected only" after the selection changed. */
  selectionChanged(): void;
  /** Messages received since the page opened (or the last clear). */
  readonly received: number;
}

interface Entry {
  connectionId: string;
  receivedAtMs: number;
  data: string;
  /** Lower-cased text the filter searches: the data, the connection id and the topic. */
  haystack: string;
  topic: string;
  sequence: bigint;
  contentType: string;
}

/** A stable hue per connection, so that rows of one connection are recognisable at a glance. */
function hueOf(id: string): number {
  let x = 0;
  for (let i = 0; i < id.length; i++) x = (x * 31 + id.charCodeAt(i)) >>> 0;
  return x % 360;
}

export function createMessageTail(options: MessageTailOptions): MessageTail {
  const maxRows = options.maxRows ?? 500;
  const historySize = options.historySize ?? 5000;
  const maxChars = options.maxChars ?? 2000;
  const schedule = options.schedule ?? ((fn) => requestAnimationFrame(fn));

  let history: Entry[] = [];
  let pending: Entry[] = [];
  let scheduled = false;
  let fullRender = false;
  let paused = false;
  let newWhilePaused = 0;
  let received = 0;
  let filterText = "";
  let lastRateAt = performance.now();
  let lastRateCount = 0;
  let rate = 0;
  const note = h("div", { class: "tail-note" });

  const matches = (e: Entry): boolean => {
    if (options.selectedOnly.checked) {
      const id = options.selectedId();
      if (id === undefined || e.connectionId !== id) return false;
    }
    return filterText === "" || e.haystack.includes(filterText);
  };

  const rowOf = (e: Entry): HTMLElement => {
    const data = e.data.length > maxChars ? `${e.data.slice(0, maxChars)}…` : e.data;
    const row = h(
      "div",
      { class: "tail-row", "data-connection": e.connectionId },
      h("span", { class: "t" }, formatClock(e.receivedAtMs)),
      h("span", { class: "c", title: e.connectionId + (e.topic ? ` → ${e.topic} #${e.sequence}` : "") }, shortId(e.connectionId)),
      h("span", { class: "d" }, e.contentType === "application/octet-stream" ? `[binary, base64] ${data}` : data),
    );
    (row.children[1] as HTMLElement).style.color = `hsl(${hueOf(e.connectionId)} 55% 50%)`;
    return row;
  };

  const isAtBottom = () => options.rows.scrollHeight - options.rows.scrollTop - options.rows.clientHeight < 24;

  const render = () => {
    scheduled = false;
    const stick = isAtBottom();
    let batch: Entry[];
    if (fullRender) {
      fullRender = false;
      options.rows.replaceChildren();
      batch = [];
      // Newest first until the DOM budget is full, then back in order.
      for (let i = history.length - 1; i >= 0 && batch.length < maxRows; i--) {
        if (matches(history[i]!)) batch.push(history[i]!);
      }
      batch.reverse();
      pending = [];
    } else {
      batch = pending.length > maxRows ? pending.slice(-maxRows) : pending;
      pending = [];
    }
    if (batch.length > 0) {
      note.remove();
      const fragment = document.createDocumentFragment();
      for (const e of batch) fragment.appendChild(rowOf(e));
      options.rows.appendChild(fragment);
      let excess = options.rows.childElementCount - maxRows;
      while (excess-- > 0) options.rows.firstElementChild!.remove();
    }
    if (options.rows.childElementCount === 0) {
      note.textContent = history.length === 0 ? "Waiting for messages…" : "No message matches the filter.";
      options.rows.appendChild(note);
    }
    if (stick) options.rows.scrollTop = options.rows.scrollHeight;
    renderStats();
  };

  const request = () => {
    if (scheduled) return;
    scheduled = true;
    schedule(render);
  };

  const renderStats = () => {
    const now = performance.now();
    if (now - lastRateAt >= 1000) {
      rate = ((received - lastRateCount) * 1000) / (now - lastRateAt);
      lastRateAt = now;
      lastRateCount = received;
    }
    const text = `${formatRate(rate)} msg/s · ${formatCount(received)} received`;
    if (options.stats.textContent !== text) options.stats.textContent = text;
    const label = paused ? (newWhilePaused > 0 ? `Resume (${formatCount(newWhilePaused)} new)` : "Resume") : "Pause";
    if (options.pause.textContent !== label) options.pause.textContent = label;
  };

  options.filter.addEventListener("input", () => {
    filterText = options.filter.value.trim().toLowerCase();
    fullRender = true;
    request();
  });
  options.selectedOnly.addEventListener("change", () => {
    fullRender = true;
    request();
  });
  options.pause.addEventListener("click", () => {
    paused = !paused;
    options.pause.setAttribute("aria-pressed", String(paused));
    if (!paused) {
      newWhilePaused = 0;
      fullRender = true;
    }
    request();
  });
  options.clear.addEventListener("click", () => {
    history = [];
    pending = [];
    newWhilePaused = 0;
    received = 0;
    lastRateCount = 0;
    fullRender = true;
    request();
  });
  options.rows.addEventListener("click", (e) => {
    const row = (e.target as HTMLElement).closest(".tail-row");
    // A click expands a long message; selecting text does not.
    if (row && window.getSelection()?.isCollapsed !== false) row.classList.toggle("expanded");
  });
  // The rate decays to zero when the feed stops, without any message to trigger a render.
  setInterval(renderStats, 1000);
  options.pause.setAttribute("aria-pressed", "false");
  request();

  return {
    push(m) {
      received++;
      const entry: Entry = {
        connectionId: m.connectionId,
        receivedAtMs: timestampMs(m.receivedAt) || Date.now(),
        data: m.data,
        haystack: `${m.connectionId} ${m.topic} ${m.data}`.toLowerCase(),
        topic: m.topic,
        sequence: m.sequence,
        contentType: m.contentType,
      };
      history.push(entry);
      // Trim in chunks: one splice per historySize/4 messages instead of a shift per message.
      if (history.length > historySize + historySize / 4) history = history.slice(-historySize);
      if (paused) {
        if (matches(entry)) newWhilePaused++;
        request();
        return;
      }
      if (!matches(entry)) {
        request();
        return;
      }
      pending.push(entry);
      // A hidden tab gets no animation frames: never hold more than one screenful.
      if (pending.length > maxRows * 2) pending = pending.slice(-maxRows);
      request();
    },
    selectionChanged() {
      if (!options.selectedOnly.checked) return;
      fullRender = true;
      request();
    },
    get received() {
      return received;
    },
  };
}
