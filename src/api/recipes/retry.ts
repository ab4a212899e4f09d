import { KeeperError } from '../../core/errors.js';
import type { RetryPolicy } from '../types.js';

/*
 * Retry policies with Curator's names and arithmetic. A session given one (`SessionOptions.retry`)
 * retries operations that failed with CONNECTIONLOSS; recipes use them for their own CAS loops.
 * `allowRetry(retryCount, elapsedMs)` returns the delay before retry number `retryCount`
 * (0-based), or `false` to give up.
 */

function checkCount(name: string, value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0) {
    throw new KeeperError('BADARGUMENTS', undefined, `${name}: ${what} must be an integer ≥ 0 (got ${String(value)})`);
  }
}

function checkMs(name: string, value: number, what: string): void {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new KeeperError('BADARGUMENTS', undefined, `${name}: ${what} must be a number of ms ≥ 0 (got ${String(value)})`);
  }
}

/** Curator caps the exponent so that the shift cannot overflow. */
const MAX_EXPONENTIAL_RETRIES = 29;

/**
 * Retries up to `maxRetries` times, sleeping `baseSleepMs * random(1 .. 2^(retryCount+1))` capped
 * at `maxSleepMs` between attempts (Curator's ExponentialBackoffRetry: randomized so that many
 * clients that lost the same member do not come back in lock-step).
 */
export class ExponentialBackoffRetry implements RetryPolicy {
  readonly baseSleepMs: number;
  readonly maxRetries: number;
  readonly maxSleepMs: number;
  private readonly random: () => number;

  constructor(baseSleepMs: number, maxRetries: number, maxSleepMs = Number.POSITIVE_INFINITY, random: () => number = Math.random) {
    checkMs('ExponentialBackoffRetry', baseSleepMs, 'baseSleepMs');
    checkCount('ExponentialBackoffRetry', maxRetries, 'maxRetries');
    checkMs('ExponentialBackoffRetry', maxSleepMs, 'maxSleepMs');
    this.baseSleepMs = baseSleepMs;
    this.maxRetries = Math.min(maxRetries, MAX_EXPONENTIAL_RETRIES);
    this.maxSleepMs = maxSleepMs;
    this.random = random;
  }

  /** The delay for retry number `retryCount`, without the give-up decision. */
  sleepFor(retryCount: number): number {
    const span = 2 ** (Math.min(retryCount, MAX_EXPONENTIAL_RETRIES) + 1);
    const factor = Math.max(1, Math.floor(this.random() * span));
    return Math.min(this.maxSleepMs, this.baseSleepMs * factor);
  }

  allowRetry(retryCount: number, _elapsedMs: number): number | false {
    if (retryCount >= this.maxRetries) return false;
    return this.sleepFor(retryCount);
  }
}

/** Retries `n` times, sleeping `sleepMs` between attempts. */
export class RetryNTimes implements RetryPolicy {
  readonly n: number;
  readonly sleepMs: number;

  constructor(n: number, sleepMs: number) {
    checkCount('RetryNTimes', n, 'n');
    checkMs('RetryNTimes', sleepMs, 'sleepMs');
    this.n = n;
    this.sleepMs = sleepMs;
  }

  allowRetry(retryCount: number, _elapsedMs: number): number | false {
    return retryCount < this.n ? this.sleepMs : false;
  }
}

/** Retries once, after `sleepMs`. */
export class RetryOneTime extends RetryNTimes {
  constructor(sleepMs: number) {
    super(1, sleepMs);
  }
}

/**
 * Retries until `maxElapsedMs` have passed since the first attempt, sleeping `sleepMs` between
 * attempts (never sleeping past the deadline).
 */
export class RetryUntilElapsed implements RetryPolicy {
  readonly maxElapsedMs: number;
  readonly sleepMs: number;

  constructor(maxElapsedMs: number, sleepMs: number) {
    checkMs('RetryUntilElapsed', maxElapsedMs, 'maxElapsedMs');
    checkMs('RetryUntilElapsed', sleepMs, 'sleepMs');
    this.maxElapsedMs = maxElapsedMs;
    this.sleepMs = sleepMs;
  }

  allowRetry(_retryCount: number, elapsedMs: number): number | false {
    if (elapsedMs >= this.maxElapsedMs) return false;
    return Math.min(this.sleepMs, this.maxElapsedMs - elapsedMs);
  }
}

/** Retries forever, sleeping `sleepMs` between attempts (Curator's RetryForever). */
export class RetryForever implements RetryPolicy {
  readonly sleepMs: number;

  constructor(sleepMs: number) {
    checkMs('RetryForever', sleepMs, 'sleepMs');
    this.sleepMs = sleepMs;
  }

  allowRetry(): number {
    return this.sleepMs;
  }
}
