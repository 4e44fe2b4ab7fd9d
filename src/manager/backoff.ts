/** Reconnect delays: exponential, capped, with jitter so that a fleet does not retry in step. */

export interface BackoffPolicy {
  baseDelayMs: number;
  maxDelayMs: number;
  /** 0 means unlimited. */
  maxAttempts: number;
}

/**
 * Delay before attempt `attempt` (1-based): the exponential step min(max, base * 2^(n-1)),
 * then "equal jitter": half of the step fixed, half random. Unlike full jitter, a retry never
 * fires at once, and attempts of many connections still spread over half the step.
 */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** exponent);
  return Math.round(step / 2 + random() * (step / 2));
}

export function attemptsExhausted(attempt: number, policy: BackoffPolicy): boolean {
  return policy.maxAttempts > 0 && attempt >= policy.maxAttempts;
}
