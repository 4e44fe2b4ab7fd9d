import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { addressRefusal, createUrlPolicy } from "../src/manager/url-policy.ts";

function codeOf(fn: () => unknown): Code | undefined {
  try {
    fn();
  } catch (e) {
    return ConnectError.from(e).code;
  }
  return undefined;
}

describe("URL policy", () => {
  it("accepts ws and wss only, with a message that says what is wrong", () => {
    const p = createUrlPolicy();
    expect(p.parse("wss://stream.example.com/ws").host).toBe("stream.example.com");
    expect(p.parse("ws://127.0.0.1:9000/x?y=1").port).toBe("9000");
    expect(() => p.parse("https://example.com/")).toThrow(/scheme "https" is not supported; use ws or wss/);
    expect(() => p.parse("example.com")).toThrow(/not a valid URL/);
    expect(() => p.parse("")).toThrow(/url is empty/);
    expect(() => p.parse("ws://example.com/#frag")).toThrow(/fragment/);
  });

  it("always refuses link-local, metadata and reserved addresses, also IPv4-mapped", () => {
    for (const a of ["169.254.169.254", "169.254.1.1", "fe80::1", "fd00:ec2::254", "100.100.100.200", "0.0.0.0", "::ffff:169.254.169.254", "224.0.0.1"]) {
      expect(addressRefusal(a, false), a).toBeDefined();
    }
    for (const a of ["127.0.0.1", "10.1.2.3", "192.168.1.1", "::1", "8.8.8.8", "2001:db8::1"]) {
      expect(addressRefusal(a, false), a).toBeUndefined();
    }
  });

  it("refuses private and loopback ranges only when asked", () => {
    for (const a of ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "::1", "fd12::1", "::ffff:127.0.0.1"]) {
      expect(addressRefusal(a, true), a).toBeDefined();
    }
    expect(addressRefusal("8.8.8.8", true)).toBeUndefined();
    expect(addressRefusal("172.32.0.1", true)).toBeUndefined();
  });

  it("checks the resolved addresses, all of them", async () => {
    const p = createUrlPolicy({
      lookup: async (host) =>
        host === "rebind.test"
          ? [
              { address: "93.184.216.34", family: 4 },
              { address: "169.254.169.254", family: 4 },
            ]
          : [{ address: "93.184.216.34", family: 4 }],
    });
    await expect(p.resolve(p.parse("ws://rebind.test/"))).rejects.toThrow(/refused address/);
    const ok = await p.resolve(p.parse("wss://public.test/"));
    expect(ok).toMatchObject({ address: "93.184.216.34", family: 4 });
  });

  it("maps a DNS failure to UNAVAILABLE", async () => {
    const p = createUrlPolicy({
      lookup: async () => {
        throw Object.assign(new Error("nope"), { code: "ENOTFOUND" });
      },
    });
    const err = await p.resolve(p.parse("ws://nowhere.test/")).catch((e: unknown) => ConnectError.from(e));
    expect((err as ConnectError).code).toBe(Code.Unavailable);
    expect((err as ConnectError).rawMessage).toContain("ENOTFOUND");
  });

  it("applies the host allow-list, with wildcard subdomains", () => {
    const p = createUrlPolicy({ allowedHosts: ["*.binance.com", "ws.kraken.com"] });
    expect(codeOf(() => p.parse("wss://stream.binance.com/ws"))).toBeUndefined();
    expect(codeOf(() => p.parse("wss://ws.kraken.com/"))).toBeUndefined();
    expect(codeOf(() => p.parse("wss://binance.com.evil.test/"))).toBe(Code.InvalidArgument);
    expect(codeOf(() => p.parse("wss://evil.test/"))).toBe(Code.InvalidArgument);
  });
});
