/**
 * The connections table: one row per connection, kept by id and updated in place, so that a
 * refresh every second neither rebuilds the DOM nor loses the reader's selection or hover.
 */
import { h, replaceChildren } from "./dom.ts";
import type { ConnectionStore, ConnectionView } from "./connection-store.ts";
import { formatCount, formatRate, shortId } from "./format.ts";

export interface ConnectionTableOptions {
  body: HTMLTableSectionElement;
  /** Shown instead of the rows when there are none. */
  empty: HTMLElement;
  /** "3 connections · 2 connected". */
  count: HTMLElement;
  store: ConnectionStore;
  onSelect(id: string): void;
}

export interface ConnectionTable {
  setSelected(id: string | undefined): void;
  render(): void;
}

interface RowCells {
  tr: HTMLTableRowElement;
  status: HTMLSpanElement;
  url: HTMLDivElement;
  meta: HTMLDivElement;
  metaKey: string;
  topic: HTMLTableCellElement;
  in: HTMLTableCellElement;
  out: HTMLTableCellElement;
  rate: HTMLTableCellElement;
  reconnects: HTMLTableCellElement;
  drops: HTMLTableCellElement;
  error: HTMLDivElement;
}

/** Sets text only when it changed: cheap, and keeps text selection stable. */
function setText(el: HTMLElement, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

export function createConnectionTable(options: ConnectionTableOptions): ConnectionTable {
  const rows = new Map<string, RowCells>();
  let selected: string | undefined;

  const createRow = (id: string): RowCells => {
    const status = h("span", { class: "status" });
    const url = h("div", { class: "conn-url" });
    const meta = h("div", { class: "conn-meta" });
    const error = h("div", { class: "last-error" });
    const cell = (cls = "") => h("td", cls ? { class: cls } : {});
    const cells = {
      topic: cell("mono"),
      in: cell("num"),
      out: cell("num"),
      rate: cell("num"),
      reconnects: cell("num"),
      drops: cell("num"),
    };
    const tr = h(
      "tr",
      { "data-id": id, "aria-selected": "false", tabindex: 0 },
      h("td", {}, status),
      h("td", {}, url, meta),
      cells.topic,
      cells.in,
      cells.out,
      cells.rate,
      cells.reconnects,
      cells.drops,
      h("td", {}, error),
    );
    tr.addEventListener("click", () => options.onSelect(id));
    tr.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        options.onSelect(id);
      }
    });
    return { tr, status, url, meta, metaKey: "", error, ...cells };
  };

  const update = (r: RowCells, c: ConnectionView) => {
    setText(r.status, c.status);
    r.status.dataset.status = c.status;
    r.tr.dataset.status = c.status;
    setText(r.url, c.url);
    const metaKey = JSON.stringify([c.id, c.tags, c.autoReconnect]);
    if (metaKey !== r.metaKey) {
      r.metaKey = metaKey;
      replaceChildren(
        r.meta,
        h("span", { class: "mono", title: c.id }, shortId(c.id)),
        c.autoReconnect ? h("span", { title: "Reconnects automatically" }, "↻ auto") : null,
        ...Object.entries(c.tags).map(([k, v]) => h("span", { class: "tag" }, `${k}=${v}`)),
      );
    }
    setText(r.topic, c.topic || "–");
    const s = c.stats;
    setText(r.in, s ? formatCount(s.messagesIn) : "–");
    setText(r.out, s ? formatCount(s.messagesOut) : "–");
    setText(r.rate, formatRate(c.rates?.inPerSecond));
    setText(r.reconnects, s ? formatCount(s.reconnects) : "–");
    const drops = s ? s.publishDropped : 0n;
    setText(r.drops, s ? formatCount(drops) : "–");
    r.drops.classList.toggle("drops-nonzero", drops > 0n);
    setText(r.error, c.lastError);
    r.error.title = c.lastError;
  };

  const table: ConnectionTable = {
    setSelected(id) {
      selected = id;
      for (const [rowId, r] of rows) r.tr.setAttribute("aria-selected", String(rowId === id));
    },
    render() {
      const list = options.store.list();
      const seen = new Set<string>();
      let previous: HTMLTableRowElement | null = null;
      for (const c of list) {
        seen.add(c.id);
        let r = rows.get(c.id);
        if (!r) {
          r = createRow(c.id);
          rows.set(c.id, r);
          r.tr.setAttribute("aria-selected", String(c.id === selected));
        }
        update(r, c);
        // Keep DOM order equal to list order, moving only what is out of place.
        const expected: ChildNode | null = previous ? previous.nextSibling : options.body.firstChild;
        if (expected !== r.tr) options.body.insertBefore(r.tr, expected);
        previous = r.tr;
      }
      for (const [id, r] of rows) {
        if (seen.has(id)) continue;
        r.tr.remove();
        rows.delete(id);
      }
      options.empty.hidden = list.length > 0;
      const connected = list.filter((c) => c.status === "connected").length;
      setText(options.count, list.length === 0 ? "" : `${list.length} total · ${connected} connected`);
    },
  };
  return table;
}
