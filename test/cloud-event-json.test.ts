/**
 * messageCloudEventJson must be a drop-in for JSON.stringify(messageCloudEvent(frame)): its text
 * parses to exactly the object messageCloudEvent builds (with the same id), for JSON, text and
 * binary frames and whatever characters the strings hold.
 */
import { describe, expect, it } from "vitest";
import { messageCloudEvent } from "../src/publish/cloud-event.ts";
import { messageCloudEventJson } from "../src/publish/cloud-event-json.ts";
import type { InboundFrame } from "../src/publish/events.ts";

function frame(overrides: Partial<InboundFrame>): InboundFrame {
  return {
    connectionId: "0b6f4c1e-5d2a-4f7e-9a51-7c2d8e3f1a90",
    url: "wss://stream.example.test/ws?streams=btcusdt@trade",
    instanceId: "wsm-test-1",
    data: "{}",
    contentType: "application/json",
    bytes: 2,
    receivedAtMs: Date.UTC(2026, 0, 2, 3, 4, 5, 6),
    topic: "t",
    sequence: 7,
    ...overrides,
  };
}

/** Parses the fast text and compares with messageCloudEvent's object, given the same id. */
function expectSameEvent(f: InboundFrame): string {
  const text = messageCloudEventJson(f);
  // Through UTF-8, as on the wire: an unescaped lone surrogate would come back as U+FFFD.
  const parsed = JSON.parse(Buffer.from(text, "utf8").toString("utf8")) as Record<string, unknown>;
  expect(parsed.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const expected = { ...messageCloudEvent(f), id: parsed.id };
  expect(parsed).toStrictEqual(expected);
  // Same attributes in the same order, so a diff of stored envelopes shows no churn either.
  expect(Object.keys(parsed)).toEqual(Object.keys(expected));
  return text;
}

const TRICKY = [
  "",
  'say "hi"',
  "back\\slash",
  "tab\tnew\nline\rcr",
  "\u0000\u0001\u001f\u007f",
  "\u2028\u2029 line separators",
  "ünïcødé ✓ 中文",
  "emoji 😀👍🏽",
  "lone high \ud83d end",
  "lone low \ude00 end",
  "</script><!--",
  "{\"looks\":\"like json\"}",
];

describe("messageCloudEventJson", () => {
  it.each([
    ['{"e":"trade","p":"42000.5","q":0.001,"nested":{"ok":true,"list":[1,2,3]}}'],
    ["[1,\"two\",null,true,false,{}]"],
    ["42"],
    ["-0"],
    ["1.5e300"],
    ['"a JSON string with \\"escapes\\" and \\u00e9 \\ud83d\\ude00"'],
    ["null"],
    ["true"],
    ['  { "spaced" : [ 1 , 2 ] }\n'],
    ['{"big":123456789012345678901234567890,"small":1e-320}'],
    ['{"__proto__":{"polluted":true},"dup":1,"dup":2}'],
    ['{"line":"\u2028\u2029","raw":"ünïcødé 😀"}'],
  ])("embeds JSON frame %s as the same value", (data) => {
    const text = expectSameEvent(frame({ data, contentType: "application/json" }));
    expect(text).toContain(`"data":${data}}`);
  });

  it.each(TRICKY.map((s) => [s]))("serializes text frame %j", (data) => {
    expectSameEvent(frame({ data, contentType: "text/plain" }));
  });

  it("serializes binary frames as data_base64 with their content type", () => {
    const data = Buffer.from([0, 1, 2, 253, 254, 255]).toString("base64");
    const text = expectSameEvent(frame({ data, contentType: "application/octet-stream" }));
    expect(JSON.parse(text)).toMatchObject({ data_base64: data, datacontenttype: "application/octet-stream" });
    expect(JSON.parse(text)).not.toHaveProperty("data");
  });

  it.each(TRICKY.map((s) => [s]))("escapes attribute strings %j", (s) => {
    expectSameEvent(frame({ connectionId: s, url: `wss://x.test/${s}`, instanceId: s, contentType: "text/plain", data: s }));
  });

  it("gives byte-identical text to JSON.stringify for compact JSON data", () => {
    const f = frame({ data: '{"a":[1,{"b":"c"}],"d":"é😀"}', sequence: 123456 });
    const id = "11111111-2222-4333-8444-555555555555";
    expect(messageCloudEventJson(f, id)).toBe(JSON.stringify({ ...messageCloudEvent(f), id }));
    for (const contentType of ["text/plain", "application/octet-stream"]) {
      const g = frame({ data: "aGVsbG8=", contentType });
      expect(messageCloudEventJson(g, id)).toBe(JSON.stringify({ ...messageCloudEvent(g), id }));
    }
  });

  it("keeps the digits of integers beyond 2^53 that a parse would round", () => {
    const text = messageCloudEventJson(frame({ data: '{"id":12345678901234567890}' }));
    expect(text).toContain('"data":{"id":12345678901234567890}}');
  });

  it("gives every event a fresh id unless one is passed, and reuses a burst's timestamp correctly", () => {
    const f = frame({});
    const ids = new Set(Array.from({ length: 100 }, () => (JSON.parse(messageCloudEventJson(f)) as { id: string }).id));
    expect(ids.size).toBe(100);
    expect((JSON.parse(messageCloudEventJson(f, "given-id")) as { id: string }).id).toBe("given-id");
    // Alternating times must not leak one frame's time into another's envelope.
    for (const ms of [0, 1, 0, Date.UTC(2030, 5, 6), 1]) expectSameEvent(frame({ receivedAtMs: ms }));
  });

  it("matches for random strings of awkward code units", () => {
    // Deterministic PRNG so a failure reproduces.
    let seed = 42;
    const next = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const units = [0x00, 0x08, 0x09, 0x0a, 0x1f, 0x20, 0x22, 0x2f, 0x5c, 0x7f, 0xe9, 0x2028, 0xd83d, 0xde00, 0xfffd, 0x41];
    const randomString = () =>
      String.fromCharCode(...Array.from({ length: Math.floor(next() * 12) }, () => units[Math.floor(next() * units.length)]!));
    for (let i = 0; i < 300; i++) {
      const s = randomString();
      expectSameEvent(frame({ connectionId: s, url: randomString(), instanceId: randomString(), contentType: "text/plain", data: s }));
      expectSameEvent(frame({ data: JSON.stringify({ s, n: i }), contentType: "application/json" }));
    }
  });
});
