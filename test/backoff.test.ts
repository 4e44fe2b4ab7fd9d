import { describe, expect, it } from "vitest";
import { attemptsExhausted, backoffDelayMs } from "../src/manager/backoff.ts";

describe("backoff", () => {
  const policy = { baseDelayMs: 1000, maxDelayMs: 30_000, maxAttempts: 0 };

  it("doubles per attempt up to the cap, with half of each step jittered", () => {
    expect(backoffDelayMs(1, policy, () => 0)).toBe(500);
    expect(backoffDelayMs(1, policy, () => 1)).toBe(1000);
    expect(backoffDelayMs(2, policy, () => 1)).toBe(2000);
    expect(backoffDelayMs(5, policy, () => 1)).toBe(16_000);
    expect(backoffDelayMs(6, policy, () => 1)).toBe(30_000);
    expect(backoffDelayMs(60, policy, () => 1)).toBe(30_000);
    expect(backoffDelayMs(60, policy, () => 0)).toBe(15_000);
  });

  it("spreads the attempts of many connections", () => {
    const delays = Array.from({ length: 1000 }, () => backoffDelayMs(3, policy));
    const min = Math.min(...delays);
    const max = Math.max(...delays);
    expect(min).toBeGreaterThanOrEqual(2000);
    expect(max).toBeLessThanOrEqual(4000);
    expect(max - min).toBeGreaterThan(1500);
  });

  it("stops after max attempts; 0 is unlimited", () => {
    expect(attemptsExhausted(1_000_000, policy)).toBe(false);
    expect(attemptsExhausted(2, { ...policy, maxAttempts: 3 })).toBe(false);
    expect(attemptsExhausted(3, { ...policy, maxAttempts: 3 })).toBe(true);
  });
});
