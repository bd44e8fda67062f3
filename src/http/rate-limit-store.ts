import { RedisClient } from 'bun';
import type { Config } from '../config.ts';

/** A counter in a fixed window: how many hits so far, and when the window closes. */
export interface WindowCount {
  count: number;
  resetInMs: number;
}

/**
 * Where rate-limit counters live: this process's memory, or Redis so that every instance counts
 * against one limit. Every method may reject (Redis down); callers decide to fail open.
 */
export interface RateLimitStore {
  /** Adds one to `key`; the first hit opens a window of `windowMs` that is never extended. */
  increment(key: string, windowMs: number): Promise<WindowCount>;
  /**
   * In one atomic step: when `guard` is set, answers its window (`blocked`) and counts nothing;
   * otherwise adds one to `key` as `increment` does. Two callers can never both pass a guard
   * that one of them is about to set from the count.
   */
  incrementUnless(guard: string, key: string, windowMs: number): Promise<WindowCount & { blocked: boolean }>;
  /** The current count of `key`, or null when it has none (never counted, or expired). */
  peek(key: string): Promise<WindowCount | null>;
  /** Sets `key` to `count` for `ttlMs`, replacing any window it had. */
  put(key: string, count: number, ttlMs: number): Promise<void>;
  delete(...keys: string[]): Promise<void>;
  close(): void;
}

/** Expired windows are dropped every so many increments, so a flood of keys cannot pile up. */
const SWEEP_EVERY = 1000;

export class MemoryStore implements RateLimitStore {
  private readonly windows = new Map<string, { count: number; expiresAt: number }>();
  private untilSweep = SWEEP_EVERY;

  async increment(key: string, windowMs: number): Promise<WindowCount> {
    if (--this.untilSweep <= 0) this.sweep();
    const now = Date.now();
    let window = this.windows.get(key);
    if (!window || window.expiresAt <= now) {
      window = { count: 0, expiresAt: now + windowMs };
      this.windows.set(key, window);
    }
    window.count += 1;
    return { count: window.count, resetInMs: window.expiresAt - now };
  }

  async incrementUnless(guard: string, key: string, windowMs: number): Promise<WindowCount & { blocked: boolean }> {
    const held = await this.peek(guard);
    if (held) return { ...held, blocked: true };
    return { ...(await this.increment(key, windowMs)), blocked: false };
  }

  async peek(key: string): Promise<WindowCount | null> {
    const window = this.windows.get(key);
    const now = Date.now();
    if (!window || window.expiresAt <= now) return null;
    return { count: window.count, resetInMs: window.expiresAt - now };
  }

  async put(key: string, count: number, ttlMs: number): Promise<void> {
    this.windows.set(key, { count, expiresAt: Date.now() + ttlMs });
  }

  async delete(...keys: string[]): Promise<void> {
    for (const key of keys) this.windows.delete(key);
  }

  close(): void {
    this.windows.clear();
  }

  private sweep() {
    this.untilSweep = SWEEP_EVERY;
    const now = Date.now();
    for (const [key, window] of this.windows) if (window.expiresAt <= now) this.windows.delete(key);
  }
}

// One round trip, atomic: the window's expiry is set by the hit that creates it, and a key left
// without one (it cannot happen through this script, but a manual SET could) gets it back.
const INCREMENT = `
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}`;

const INCREMENT_UNLESS = `
local held = redis.call('PTTL', KEYS[1])
if held > 0 or held == -1 then
  return {tonumber(redis.call('GET', KEYS[1])) or 1, held > 0 and held or tonumber(ARGV[1]), 1}
end
local count = redis.call('INCR', KEYS[2])
local ttl = redis.call('PTTL', KEYS[2])
if count == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl, 0}`;

const PEEK = `
local count = redis.call('GET', KEYS[1])
if not count then return false end
return {tonumber(count), redis.call('PTTL', KEYS[1])}`;

/** A command that takes longer is abandoned (and the request fails open). */
const COMMAND_TIMEOUT_MS = 500;
/** After a failed connection attempt, requests do not try again for this long. */
const RECONNECT_PAUSE_MS = 2000;

class RedisUnavailable extends Error {}

function timeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: Timer | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RedisUnavailable(`Redis ${what} took longer than ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Counters in Redis, under `keyPrefix`. The connection is (re)opened here rather than by the
 * client: with its offline queue a command would wait for a server that is gone, and once the
 * client has given up reconnecting it never tries again by itself.
 */
export class RedisStore implements RateLimitStore {
  private readonly client: RedisClient;
  private connecting: Promise<void> | undefined;
  private nextAttemptAt = 0;

  constructor(
    url: string,
    private readonly keyPrefix: string,
  ) {
    this.client = new RedisClient(url, { enableOfflineQueue: false, autoReconnect: false, connectionTimeout: COMMAND_TIMEOUT_MS });
  }

  async increment(key: string, windowMs: number): Promise<WindowCount> {
    const [count, ttl] = (await this.command('EVAL', [INCREMENT, '1', this.keyPrefix + key, String(windowMs)])) as [number, number];
    return { count, resetInMs: ttl };
  }

  async incrementUnless(guard: string, key: string, windowMs: number): Promise<WindowCount & { blocked: boolean }> {
    const [count, ttl, blocked] = (await this.command('EVAL', [INCREMENT_UNLESS, '2', this.keyPrefix + guard, this.keyPrefix + key, String(windowMs)])) as [number, number, number];
    return { count, resetInMs: ttl, blocked: blocked === 1 };
  }

  async peek(key: string): Promise<WindowCount | null> {
    const reply = (await this.command('EVAL', [PEEK, '1', this.keyPrefix + key])) as [number, number] | null;
    if (!reply || reply[1] < 0) return null;
    return { count: reply[0], resetInMs: reply[1] };
  }

  async put(key: string, count: number, ttlMs: number): Promise<void> {
    await this.command('SET', [this.keyPrefix + key, String(count), 'PX', String(ttlMs)]);
  }

  async delete(...keys: string[]): Promise<void> {
    if (keys.length) await this.command('DEL', keys.map((key) => this.keyPrefix + key));
  }

  close(): void {
    this.client.close();
  }

  private async command(name: string, args: string[]): Promise<unknown> {
    if (!this.client.connected) await this.connect();
    return timeout(this.client.send(name, args), COMMAND_TIMEOUT_MS, name);
  }

  private connect(): Promise<void> {
    if (this.connecting) return this.connecting;
    if (Date.now() < this.nextAttemptAt) return Promise.reject(new RedisUnavailable('Redis is unreachable; retrying shortly'));
    this.nextAttemptAt = Date.now() + RECONNECT_PAUSE_MS;
    this.connecting = timeout(this.client.connect(), COMMAND_TIMEOUT_MS, 'connection').finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }
}

export function createRateLimitStore(config: Pick<Config, 'redis'>): RateLimitStore {
  return config.redis.url ? new RedisStore(config.redis.url, config.redis.keyPrefix) : new MemoryStore();
}
