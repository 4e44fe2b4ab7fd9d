/**
 * The web console in a real browser: Debian's headless Chromium driven by playwright-core,
 * against the real service on port 0 (serving the console through its extra HTTP handler, as
 * main does) and real local WebSocket servers. Screenshots go to test-results/console/.
 */
import { mkdirSync } from "node:fs";
import type { Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createConsoleHandler } from "../src/console/console-handler.ts";
import { launchBrowser, type TestBrowser } from "./support/browser.ts";
import { clientFor, startService, transports, type RunningService, type WsmClient } from "./support/service.ts";
import { startWsServer, type Behaviour, type TestWsServer } from "./support/ws-servers.ts";

const SCREENSHOTS = "test-results/console";
const TOKEN = "console-test-token";

let browser: TestBrowser;
let service: RunningService;
let api: WsmClient;

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const consoleHandler = createConsoleHandler();
  [browser, service] = await Promise.all([launchBrowser(), startService({}, { extraHttpHandler: consoleHandler.handle })]);
  await consoleHandler.warm();
  api = clientFor(transports[1]!.make(service.baseUrl));
});
afterAll(async () => {
  await browser?.close();
  await service?.close();
});

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  // Every test starts with an empty table.
  for (const c of (await api.list({})).connections) await api.disconnect({ id: c.id }).catch(() => {});
});

async function upstream(behaviour: Behaviour): Promise<TestWsServer> {
  const s = await startWsServer({ behaviour });
  cleanups.push(() => s.close());
  return s;
}

async function openConsole(baseUrl: string, query = ""): Promise<Page> {
  const page = await browser.context.newPage();
  cleanups.push(() => page.close());
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  cleanups.push(() => expect(errors, "uncaught errors in the page").toEqual([]));
  await page.goto(`${baseUrl}/${query}`);
  return page;
}

async function waitLive(page: Page): Promise<void> {
  await page.locator('#stream-state[data-state="live"]').waitFor();
}

/** Opens a connection with the form; returns its id once its row shows it connected. */
async function connectFromForm(page: Page, url: string, fields: { tags?: string; onOpen?: string; autoReconnect?: boolean } = {}): Promise<string> {
  await page.fill("#connect-url", url);
  await page.fill("#connect-tags", fields.tags ?? "");
  await page.fill("#connect-on-open", fields.onOpen ?? "");
  await page.setChecked("#connect-auto-reconnect", fields.autoReconnect ?? true);
  await page.click("#connect-submit");
  await page.locator("#connect-result.ok").waitFor();
  const row = page.locator('#connections-body tr[aria-selected="true"]');
  await row.waitFor();
  const id = (await row.getAttribute("data-id"))!;
  await page.locator(`#connections-body tr[data-id="${id}"][data-status="connected"]`).waitFor();
  return id;
}

const rowOf = (page: Page, id: string) => page.locator(`#connections-body tr[data-id="${id}"]`);

describe("web console", () => {
  it("connects from the form, sends a message and shows the reply", async () => {
    const echo = await upstream("echo");
    const page = await openConsole(service.baseUrl);
    await waitLive(page);
    expect(await page.locator("#connections-empty").isVisible()).toBe(true);

    const id = await connectFromForm(page, echo.url, { tags: "venue=test\ndesk = fx", onOpen: '{"op":"hello"}' });
    await echo.waitForReceived(1);
    expect(echo.received[0]!.data.toString()).toBe('{"op":"hello"}');
    const listed = (await api.list({})).connections.find((c) => c.id === id)!;
    expect(listed).toMatchObject({ url: echo.url, autoReconnect: true, tags: { venue: "test", desk: "fx" } });
    await expect.poll(() => rowOf(page, id).locator(".tag").allTextContents()).toEqual(["venue=test", "desk=fx"]);

    // The echo server returns the request, whose "id" correlates it with itself.
    await page.fill("#send-message", '{"id":"q-1","hello":"world"}');
    await page.click("#send-submit");
    await page.locator("#send-reply").waitFor();
    expect(JSON.parse((await page.textContent("#send-reply"))!)).toEqual({ id: "q-1", hello: "world" });
    expect(await page.textContent("#send-result")).toMatch(/Reply in \d+ ms · application\/json/);
    await page.screenshot({ path: `${SCREENSHOTS}/send-reply.png` });

    await page.fill("#send-message", "raw text");
    await page.click("#send-raw-submit");
    await page.locator("#send-result.ok", { hasText: "Sent at" }).waitFor();
    await echo.waitForReceived(3);
    expect(echo.received[2]!.data.toString()).toBe("raw text");

    // Statistics come from the snapshots: three frames out (on-open, send, raw), and the
    // echo of each in.
    await expect.poll(() => rowOf(page, id).locator("td:nth-child(4)").textContent()).toBe("3");
    await expect.poll(() => rowOf(page, id).locator("td:nth-child(5)").textContent()).toBe("3");

    await page.fill("#publish-topic", "md.console");
    await page.click("#publish-start");
    await page.locator("#publish-result.ok").waitFor();
    await expect.poll(() => rowOf(page, id).locator("td:nth-child(3)").textContent()).toBe("md.console");
    await page.click("#publish-stop");
    await expect.poll(() => rowOf(page, id).locator("td:nth-child(3)").textContent()).toBe("–");
  });

  it("streams a fast feed into the live tail in batches, with pause and filter", async () => {
    const echo = await upstream("echo");
    const page = await openConsole(service.baseUrl);
    await waitLive(page);
    const id = await connectFromForm(page, echo.url);

    // Longest gap between animation frames while the feed runs: a frozen page has long ones.
    await page.evaluate(() => {
      const w = window as unknown as { maxFrameGapMs: number };
      w.maxFrameGapMs = 0;
      let last = performance.now();
      const tick = (t: number) => {
        w.maxFrameGapMs = Math.max(w.maxFrameGapMs, t - last);
        last = t;
        requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    // 2000 messages in bursts of 100: a feed of a few thousand messages per second.
    for (let seq = 0; seq < 2000; seq++) {
      echo.broadcast(JSON.stringify({ seq, symbol: "BTC-USD", price: 50_000 + seq / 100 }));
      if (seq % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
    }
    await expect.poll(() => page.textContent("#tail-stats"), { timeout: 15_000 }).toMatch(/2,000 received/);
    await page.locator(".tail-row", { hasText: '"seq":1999' }).waitFor();
    // The DOM keeps a bounded number of rows, the newest last.
    const rows = await page.locator(".tail-row").count();
    expect(rows).toBeGreaterThan(100);
    expect(rows).toBeLessThanOrEqual(500);
    expect(await page.locator(".tail-row").last().textContent()).toContain('"seq":1999');
    const maxGap = await page.evaluate(() => (window as unknown as { maxFrameGapMs: number }).maxFrameGapMs);
    // Generous for a loaded two-core machine; a page that renders every message apart stalls
    // for seconds.
    expect(maxGap).toBeLessThan(1500);
    await expect.poll(() => rowOf(page, id).locator("td:nth-child(4)").textContent(), { timeout: 5000 }).toBe("2,000");
    await page.screenshot({ path: `${SCREENSHOTS}/live-tail.png` });

    // Paused: the rows stand still while the feed goes on, and resume shows the news.
    await page.click("#tail-pause");
    for (let seq = 2000; seq < 2010; seq++) echo.broadcast(JSON.stringify({ seq }));
    await expect.poll(() => page.textContent("#tail-pause")).toBe("Resume (10 new)");
    expect(await page.locator(".tail-row").last().textContent()).toContain('"seq":1999');
    await page.click("#tail-pause");
    await page.locator(".tail-row").last().filter({ hasText: '"seq":2009' }).waitFor();
    expect(await page.textContent("#tail-pause")).toBe("Pause");

    // The filter searches what the tail remembers, not only what is on screen.
    await page.fill("#tail-filter", '"seq":1234,');
    await expect.poll(() => page.locator(".tail-row").count()).toBe(1);
    expect(await page.locator(".tail-row").textContent()).toContain('"seq":1234,');
    await page.fill("#tail-filter", "");
    await expect.poll(() => page.locator(".tail-row").count()).toBeGreaterThan(100);
  });

  it("shows a dropped upstream as reconnecting, then connected again", async () => {
    const echo = await upstream("echo");
    const page = await openConsole(service.baseUrl);
    await waitLive(page);
    const id = await connectFromForm(page, echo.url, { autoReconnect: true });

    // Refusing while dropped keeps the connection reconnecting long enough to be seen.
    echo.setRefusing(true);
    echo.dropAll();
    await rowOf(page, id).locator('.status[data-status="reconnecting"]').waitFor();
    expect(await page.textContent("#details-status")).toBe("reconnecting");
    await page.screenshot({ path: `${SCREENSHOTS}/reconnecting.png` });
    echo.setRefusing(false);
    await rowOf(page, id).locator('.status[data-status="connected"]').waitFor();
    await expect.poll(() => rowOf(page, id).locator("td:nth-child(7)").textContent()).toBe("1");
  });

  it("reconnects a disconnected connection and disconnects it: the row goes", async () => {
    const echo = await upstream("echo");
    const page = await openConsole(service.baseUrl);
    await waitLive(page);
    const id = await connectFromForm(page, echo.url, { autoReconnect: false });
    echo.dropAll();
    await rowOf(page, id).locator('.status[data-status="disconnected"]').waitFor();
    await page.click("#reconnect-submit");
    await page.locator("#action-result.ok", { hasText: "Reconnected: connected" }).waitFor();
    await rowOf(page, id).locator('.status[data-status="connected"]').waitFor();

    await page.click("#disconnect-submit");
    await rowOf(page, id).waitFor({ state: "detached" });
    expect((await api.list({})).connections.map((c) => c.id)).not.toContain(id);
    await page.locator("#connections-empty").waitFor({ state: "visible" });
    // Later snapshots and late events do not bring it back.
    const connectionsAfter = await page.evaluate(
      () => new Promise<number>((resolve) => setTimeout(() => resolve(document.querySelectorAll("#connections-body tr").length), 2500)),
    );
    expect(connectionsAfter).toBe(0);
  });

  it("shows errors with their code name: a refusing upstream, a bad URL, bad tags", async () => {
    const refusing = await upstream("refuse");
    const page = await openConsole(service.baseUrl);
    await waitLive(page);

    await page.fill("#connect-url", refusing.url);
    await page.click("#connect-submit");
    const error = page.locator('#connect-result .error[data-code="UNAVAILABLE"]');
    await error.waitFor();
    expect(await error.textContent()).toMatch(/^UNAVAILABLE.*403/);
    await page.screenshot({ path: `${SCREENSHOTS}/connect-error.png` });

    await page.fill("#connect-url", "http://127.0.0.1:1/");
    await page.click("#connect-submit");
    await page.locator('#connect-result .error[data-code="INVALID_ARGUMENT"]').waitFor();

    await page.fill("#connect-url", refusing.url);
    await page.fill("#connect-tags", "no equals sign");
    await page.click("#connect-submit");
    expect(await page.textContent('#connect-result .error[data-code="INVALID_ARGUMENT"]')).toContain("line 1");
    expect((await api.list({})).connections).toEqual([]);
  });

  it("works over Connect as well (?protocol=connect)", async () => {
    const echo = await upstream("echo");
    const page = await openConsole(service.baseUrl, "?protocol=connect");
    await waitLive(page);
    expect(await page.textContent("#stream-state-text")).toBe("Live · Connect");
    await connectFromForm(page, echo.url);
    await page.fill("#send-message", '{"id":7}');
    await page.click("#send-submit");
    await page.locator("#send-reply").waitFor();
    expect(JSON.parse((await page.textContent("#send-reply"))!)).toEqual({ id: 7 });
    echo.broadcast("tick");
    await page.locator(".tail-row", { hasText: "tick" }).waitFor();
  });
});

describe("web console with an auth token", () => {
  let secured: RunningService;
  beforeAll(async () => {
    const consoleHandler = createConsoleHandler();
    secured = await startService({ authToken: TOKEN }, { extraHttpHandler: consoleHandler.handle });
    await consoleHandler.warm();
  });
  afterAll(() => secured?.close());

  it("asks for the token, refuses a wrong one, works with the right one and keeps it for the tab", async () => {
    const echo = await upstream("echo");
    // The page itself loads without the token: it holds no data.
    const page = await openConsole(secured.baseUrl);
    const dialog = page.locator("#token-dialog[open]");
    await dialog.waitFor();
    await page.locator('#stream-state[data-state="unauthenticated"]').waitFor();
    expect(await page.textContent("#token-reason")).toContain("requires a bearer token");
    await page.screenshot({ path: `${SCREENSHOTS}/token-required.png` });

    await page.fill("#token-input", "wrong-token");
    await page.click("#token-submit");
    await expect.poll(() => page.textContent("#token-reason")).toMatch(/refused the token \(UNAUTHENTICATED: /);
    await dialog.waitFor();

    await page.fill("#token-input", TOKEN);
    await page.click("#token-submit");
    await waitLive(page);
    expect(await dialog.count()).toBe(0);
    const id = await connectFromForm(page, echo.url);
    cleanups.push(async () => {
      const client = clientFor(transports[1]!.make(secured.baseUrl));
      await client.disconnect({ id }, { headers: { authorization: `Bearer ${TOKEN}` } }).catch(() => {});
    });

    // A reload keeps the token (sessionStorage); another tab has to enter it again.
    await page.reload();
    await waitLive(page);
    await rowOf(page, id).waitFor();
    const other = await openConsole(secured.baseUrl);
    await other.locator("#token-dialog[open]").waitFor();
  });
});
