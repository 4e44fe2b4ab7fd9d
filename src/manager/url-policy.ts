/**
 * Which upstream URLs the service may connect to. The check runs on the resolved addresses
 * at connect time (and again at every reconnect), and the socket is then opened to exactly
 * the address that passed, so a DNS answer that changes between check and connect (DNS
 * rebinding) cannot reach a refused range.
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";

export interface UrlPolicyOptions {
  /** Refuse private, loopback, CGNAT and unique-local ranges. Default false. */
  blockPrivateAddresses?: boolean;
  /**
   * Host names allowed (exact, or `*.example.com` for subdomains); empty allows every host.
   * IP literals must be listed as they appear in the URL.
   */
  allowedHosts?: readonly string[];
  /** Resolver, for tests. Default: the system resolver (all addresses). */
  lookup?: (hostname: string) => Promise<Array<{ address: string; family: number }>>;
}

export interface ResolvedTarget {
  url: URL;
  /** The address the socket must connect to. */
  address: string;
  family: 4 | 6;
}

export interface UrlPolicy {
  /** Parses and checks the syntax and scheme. Throws INVALID_ARGUMENT. */
  parse(raw: string): URL;
  /** Resolves the host and checks every address. Throws INVALID_ARGUMENT or UNAVAILABLE. */
  resolve(url: URL): Promise<ResolvedTarget>;
}

// Link-local and cloud metadata endpoints: refused whatever the options say. Reaching them
// from a service that connects where callers tell it to would hand out cloud credentials.
const alwaysBlocked = new BlockList();
alwaysBlocked.addSubnet("169.254.0.0", 16, "ipv4"); // link-local, incl. 169.254.169.254
alwaysBlocked.addSubnet("fe80::", 10, "ipv6"); // link-local
alwaysBlocked.addAddress("100.100.100.200", "ipv4"); // Alibaba Cloud metadata
alwaysBlocked.addAddress("fd00:ec2::254", "ipv6"); // AWS metadata over IPv6
alwaysBlocked.addSubnet("0.0.0.0", 8, "ipv4"); // "this network": reaches local services on Linux
alwaysBlocked.addAddress("::", "ipv6");
alwaysBlocked.addSubnet("224.0.0.0", 4, "ipv4"); // multicast
alwaysBlocked.addSubnet("ff00::", 8, "ipv6");
alwaysBlocked.addAddress("255.255.255.255", "ipv4");

const privateRanges = new BlockList();
privateRanges.addSubnet("10.0.0.0", 8, "ipv4");
privateRanges.addSubnet("172.16.0.0", 12, "ipv4");
privateRanges.addSubnet("192.168.0.0", 16, "ipv4");
privateRanges.addSubnet("100.64.0.0", 10, "ipv4"); // carrier-grade NAT
privateRanges.addSubnet("127.0.0.0", 8, "ipv4");
privateRanges.addSubnet("198.18.0.0", 15, "ipv4"); // benchmarking networks
privateRanges.addAddress("::1", "ipv6");
privateRanges.addSubnet("fc00::", 7, "ipv6"); // unique local

const metadataHostNames = new Set(["metadata.google.internal", "metadata", "instance-data", "instance-data.ec2.internal"]);

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

/** The IPv4 address inside an IPv4-mapped IPv6 address (::ffff:a.b.c.d), else undefined. */
function unmapIPv4(address: string): string | undefined {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m?.[1];
}

/** Why an address is refused, or undefined when it is allowed. */
export function addressRefusal(address: string, blockPrivate: boolean): string | undefined {
  const v4 = unmapIPv4(address);
  const [addr, type] = v4 ? [v4, "ipv4" as const] : [address, isIP(address) === 6 ? ("ipv6" as const) : ("ipv4" as const)];
  if (alwaysBlocked.check(addr, type)) return `address ${address} is link-local, metadata or otherwise reserved`;
  if (blockPrivate && privateRanges.check(addr, type)) return `address ${address} is private or loopback, which this server refuses`;
  return undefined;
}

function hostAllowed(host: string, allowed: readonly string[]): boolean {
  if (allowed.length === 0) return true;
  const h = host.toLowerCase();
  return allowed.some((pattern) => {
    const p = pattern.toLowerCase();
    if (p.startsWith("*.")) return h.endsWith(p.slice(1)) && h.length > p.length - 1;
    return h === p;
  });
}

export function createUrlPolicy(options: UrlPolicyOptions = {}): UrlPolicy {
  const blockPrivate = options.blockPrivateAddresses ?? false;
  const allowedHosts = options.allowedHosts ?? [];
  const lookup = options.lookup ?? ((hostname: string) => dnsLookup(hostname, { all: true, verbatim: true }));

  return {
    parse(raw) {
      if (raw.trim() === "") throw invalid("url is empty");
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw invalid(`url ${JSON.stringify(raw)} is not a valid URL`);
      }
      if (url.protocol !== "ws:" && url.protocol !== "wss:") {
        throw invalid(`url scheme ${JSON.stringify(url.protocol.replace(/:$/, ""))} is not supported; use ws or wss`);
      }
      if (url.hostname === "") throw invalid("url has no host");
      if (url.hash !== "") throw invalid("url must not have a fragment");
      const host = bareHost(url);
      if (metadataHostNames.has(host.toLowerCase())) throw invalid(`host ${host} is a cloud metadata endpoint`);
      if (!hostAllowed(host, allowedHosts)) throw invalid(`host ${host} is not in the allowed host list`);
      if (isIP(host)) {
        const refusal = addressRefusal(host, blockPrivate);
        if (refusal) throw invalid(refusal);
      }
      return url;
    },

    async resolve(url) {
      const host = bareHost(url);
      const ipVersion = isIP(host);
      let addresses: Array<{ address: string; family: number }>;
      if (ipVersion) {
        addresses = [{ address: host, family: ipVersion }];
      } else {
        try {
          addresses = await lookup(host);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code ?? "lookup failed";
          throw new ConnectError(`cannot resolve host ${host}: ${code}`, Code.Unavailable);
        }
        if (addresses.length === 0) throw new ConnectError(`cannot resolve host ${host}: no addresses`, Code.Unavailable);
      }
      // Every address must pass: a name that resolves to a public and a metadata address is
      // refused rather than tried in an order the attacker controls.
      for (const a of addresses) {
        const refusal = addressRefusal(a.address, blockPrivate);
        if (refusal) throw invalid(`host ${host} resolves to a refused address: ${refusal}`);
      }
      const chosen = addresses[0]!;
      return { url, address: chosen.address, family: chosen.family === 6 ? 6 : 4 };
    },
  };
}

/** URL.hostname keeps the brackets of an IPv6 literal; sockets and checks want them off. */
function bareHost(url: URL): string {
  const h = url.hostname;
  return h.startsWith("[") && h.endsWith("]") ? h.slice(1, -1) : h;
}
