/**
 * The console's HTTP side, against the real service on port 0: what it serves at which path
 * over HTTP/1.1 and HTTP/2, its caching and security headers, a failed build, the token
 * policy (assets public, RPCs not), and `--console=false`.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { connect as http2Connect } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createConsoleHandler } from "../src/console/console-handler.ts";
import { createLogger } from "../src/logger.ts";
import { startService, type RunningService } from "./support/service.ts";

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function get(baseUrl: string, path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${baseUrl}${path}`, { method: options.method ?? "GET", headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

function getHttp2(baseUrl: string, path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(baseUrl);
    session.on("error", reject);
    const stream = session.request({ ":path": path, ":method": "GET" });
    let headers: IncomingHttpHeaders = {};
    let status = 0;
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      headers = h as IncomingHttpHeaders;
    });
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      session.close();
      resolve({ status, headers, body: Buffer.concat(chunks) });
    });
    stream.on("error", reject);
    stream.end();
  });
}

describe("console handler", () => {
  let service: RunningService;
  beforeAll(async () => {
    const handler = createConsoleHandler();
    service = await startService({}, { extraHttpHandler: handler.handle });
  });
  afterAll(() => service.close());

  it("serves the page at / (and /index.html) with a strict content security policy", async () => {
    const page = await get(service.baseUrl, "/");
    expect(page.status).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.headers["content-security-policy"]).toContain("default-src 'none'");
    expect(page.headers["content-security-policy"]).toContain("connect-src 'self'");
    expect(page.headers["x-content-type-options"]).toBe("nosniff");
    const html = page.body.toString();
    expect(html).toContain('<script type="module" src="console.js"></script>');
    expect(html).toContain('<link rel="stylesheet" href="console.css" />');
    expect((await get(service.baseUrl, "/index.html")).body.equals(page.body)).toBe(true);
    expect((await get(service.baseUrl, "/?protocol=connect")).status).toBe(200);
  });

  it("serves the bundle gzip-compressed when accepted, with ETags for cheap revalidation", async () => {
    const plain = await get(service.baseUrl, "/console.js");
    expect(plain.status).toBe(200);
    expect(plain.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(plain.headers["content-encoding"]).toBeUndefined();
    const js = plain.body.toString();
    // Bundled: the console's own code is in, and nothing is imported at run time.
    expect(js.includes("websocketmanager.console.token")).toBe(true);
    expect(/\bimport\s*[{("']/.test(js)).toBe(false);
    expect(/\/\/# sourceMappingURL=console\.js\.map\s*$/.test(js)).toBe(true);

    const zipped = await get(service.baseUrl, "/console.js", { headers: { "accept-encoding": "br, gzip" } });
    expect(zipped.headers["content-encoding"]).toBe("gzip");
    expect(zipped.headers.vary).toBe("accept-encoding");
    expect(zipped.body.length).toBeLessThan(plain.body.length / 2);
    expect(gunzipSync(zipped.body).equals(plain.body)).toBe(true);

    const etag = plain.headers.etag!;
    expect(etag).toMatch(/^"[\w-]+"$/);
    expect(plain.headers["cache-control"]).toBe("no-cache");
    const again = await get(service.baseUrl, "/console.js", { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);

    const css = await get(service.baseUrl, "/console.css");
    expect(css.headers["content-type"]).toBe("text/css; charset=utf-8");
    expect(css.body.toString()).toContain(".tail-row");
    expect((await get(service.baseUrl, "/console.js.map")).headers["content-type"]).toBe("application/json");
    expect((await get(service.baseUrl, "/favicon.svg")).headers["content-type"]).toBe("image/svg+xml");
  });

  it("answers HEAD without a body, and leaves other methods and paths to the server", async () => {
    const head = await get(service.baseUrl, "/", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(Number(head.headers["content-length"])).toBeGreaterThan(0);
    expect(head.body.length).toBe(0);
    expect((await get(service.baseUrl, "/", { method: "POST" })).status).toBe(404);
    expect((await get(service.baseUrl, "/console.ts")).status).toBe(404);
    expect((await get(service.baseUrl, "/../package.json")).status).toBe(404);
    // The server's own endpoints are untouched.
    expect((await get(service.baseUrl, "/healthz")).status).toBe(200);
  });

  it("serves over HTTP/2 as well", async () => {
    const page = await getHttp2(service.baseUrl, "/");
    expect(page.status).toBe(200);
    expect(page.body.toString()).toContain("<title>WebSocketManager</title>");
  });
});

describe("console handler build failures", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "wsm-console-src-"));
    for (const f of ["index.html", "console.css", "favicon.svg"]) await writeFile(join(dir, f), await readFile(join("console", f)));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("answers 500 with the reason and logs it, then builds again once the source is fixed", async () => {
    await writeFile(join(dir, "main.ts"), "const broken = ;\n");
    const lines: string[] = [];
    const handler = createConsoleHandler({ sourceDir: dir, logger: createLogger({ level: "error", write: (l) => lines.push(l) }) });
    const service = await startService({}, { extraHttpHandler: handler.handle });
    try {
      const failed = await get(service.baseUrl, "/");
      expect(failed.status).toBe(500);
      expect(failed.body.toString()).toMatch(/^web console unavailable: /);
      expect(lines.map((l) => JSON.parse(l) as { msg: string }).map((r) => r.msg)).toContain("web console build failed");

      await writeFile(join(dir, "main.ts"), 'document.title = "fixed";\n');
      const fixed = await get(service.baseUrl, "/console.js");
      expect(fixed.status).toBe(200);
      expect(fixed.body.toString()).toContain("fixed");
    } finally {
      await service.close();
    }
  });
});

describe("console and the auth token", () => {
  it("serves the static files without the token; the RPCs still need it", async () => {
    const handler = createConsoleHandler();
    const service = await startService({ authToken: "t0ken" }, { extraHttpHandler: handler.handle });
    try {
      expect((await get(service.baseUrl, "/")).status).toBe(200);
      expect((await get(service.baseUrl, "/console.js")).status).toBe(200);
      const rpc = await fetch(`${service.baseUrl}/virtufin.WebSocketManager/List`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      expect(rpc.status).toBe(401);
      expect(((await rpc.json()) as { code: string }).code).toBe("unauthenticated");
    } finally {
      await service.close();
    }
  });
});

describe("--console", () => {
  it("true (the default): the service serves the console at /", async () => {
    const service = await startService({ console: true });
    try {
      const page = await get(service.baseUrl, "/");
      expect(page.status).toBe(200);
      expect(page.body.toString()).toContain("<title>WebSocketManager</title>");
    } finally {
      await service.close();
    }
  });

  it("false: the handler is not mounted, / and the bundle are 404", async () => {
    const service = await startService({ console: false });
    try {
      expect((await get(service.baseUrl, "/")).status).toBe(404);
      expect((await get(service.baseUrl, "/console.js")).status).toBe(404);
      expect((await get(service.baseUrl, "/healthz")).status).toBe(200);
    } finally {
      await service.close();
    }
  });
});
