/**
 * The one login throttle (src/auth-throttle.ts) on a real JetStream KV: check and increment are
 * one compare-and-set, so many connections guessing at once never get more attempts than the
 * limit; accounts are counted by their canonical account (aliases share it, unknown names are
 * counted too); a success takes its own attempt off the IP's count without resetting it; and with
 * NATS stopped each process still throttles on its own counters.
 */
import { Kvm, type KV } from '@nats-io/kv';
import { createLogger } from '@postmesh/telemetry';
import { startTestEnvironment, type TestEnvironment } from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Buckets,
  Bus,
  DEFAULT_THROTTLE_POLICY,
  KvAuthThrottle,
  accountKey,
  ipKey,
  type ThrottlePolicy,
} from '../src/index.js';

const logger = createLogger('auth-throttle-test', 'silent');
const POLICY: ThrottlePolicy = {
  ...DEFAULT_THROTTLE_POLICY,
  accountLockout: 5,
  ipLockout: 8,
  baseDelayMs: 0,
};
/** Logins the directory knows: an address and an alias of one user, another user. */
const DIRECTORY: Readonly<Record<string, string>> = {
  'ann@example.test': 'user-ann',
  'ann.alias@example.test': 'user-ann',
  'bob@example.test': 'user-bob',
};
const resolveAccount = (login: string): Promise<string | undefined> =>
  Promise.resolve(DIRECTORY[login.toLowerCase()]);

let env: TestEnvironment;
const buses: Bus[] = [];
let kv: KV;
let ipCounter = 1;
const freshIp = (): string => `198.51.100.${ipCounter++}`;

/** One replica: its own NATS connection and its own throttle (as each service process has). */
async function replica(warnings: string[] = [], settleWaitMs = 300): Promise<KvAuthThrottle> {
  const bus = await Bus.connect({
    ...env.busOptions(),
    name: `replica-${buses.length}`,
    logger,
    replicas: 1,
  });
  buses.push(bus);
  let opened: Promise<KV> | null = null;
  const open = (): Promise<KV> => {
    opened ??= new Kvm(bus.nc).open(Buckets.AUTH_FAILURES);
    opened.catch(() => (opened = null));
    return opened;
  };
  return new KvAuthThrottle(open, POLICY, (_e, what) => warnings.push(what), {
    resolveAccount,
    storeTimeoutMs: 1_000,
    // Most tests here never settle their attempts: they need not wait long for it.
    settleWaitMs,
  });
}

beforeAll(async () => {
  env = await startTestEnvironment({ mongo: false });
  const first = await Bus.connect({ ...env.busOptions(), name: 'auth-throttle-test', logger, replicas: 1 });
  buses.push(first);
  kv = await new Kvm(first.nc).open(Buckets.AUTH_FAILURES);
}, 60_000);
afterAll(async () => {
  await Promise.all(buses.map((b) => b.nc.close().catch(() => undefined)));
  await env?.stop();
});

describe('KvAuthThrottle on a real KV', () => {
  it('lets no more than the limit through when many connections guess one account at once', async () => {
    const replicas = await Promise.all(Array.from({ length: 8 }, () => replica()));
    // 48 guesses at once, 6 per replica, each from its own address (only the account limits them).
    const verdicts = await Promise.all(
      Array.from({ length: 48 }, (_, i) =>
        (replicas[i % replicas.length] as KvAuthThrottle).attempt(freshIp(), 'bob@example.test'),
      ),
    );
    const allowed = verdicts.filter((v) => v.kind === 'allowed').length;
    expect(allowed).toBe(POLICY.accountLockout);
    expect(verdicts.filter((v) => v.kind === 'locked' && v.scope === 'account')).toHaveLength(48 - allowed);
    const entry = await kv.get(accountKey('user-bob'));
    expect(entry?.json<{ count: number }>().count).toBe(POLICY.accountLockout);
  }, 60_000);

  it('lets no more than the limit through when many connections guess from one address at once', async () => {
    const replicas = await Promise.all(Array.from({ length: 4 }, () => replica()));
    const ip = freshIp();
    const verdicts = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (replicas[i % replicas.length] as KvAuthThrottle).attempt(ip, `nobody${i}@example.test`),
      ),
    );
    expect(verdicts.filter((v) => v.kind === 'allowed')).toHaveLength(POLICY.ipLockout);
    expect((await kv.get(ipKey(ip)))?.json<{ count: number }>().count).toBe(POLICY.ipLockout);
  }, 60_000);

  it('counts an address and its aliases as one account, whatever the case or spaces', async () => {
    const t = await replica();
    for (const login of ['ann@example.test', ' ANN.alias@example.test', 'Ann@Example.Test ']) {
      expect(await t.attempt(freshIp(), login)).toMatchObject({ kind: 'allowed' });
    }
    expect(await t.attempt(freshIp(), 'ann.alias@example.test')).toMatchObject({ kind: 'allowed' });
    expect(await t.attempt(freshIp(), 'ann@example.test')).toMatchObject({ kind: 'allowed' });
    // Five attempts through three spellings: the account is at its limit on every replica.
    expect(await (await replica()).attempt(freshIp(), 'ANN.ALIAS@example.test')).toMatchObject({
      kind: 'locked',
      scope: 'account',
    });
    expect((await kv.get(accountKey('user-ann')))?.json<{ count: number }>().count).toBe(5);
  });

  it('throttles a login that names no account exactly like one that does', async () => {
    const t = await replica();
    for (let i = 0; i < POLICY.accountLockout; i++) {
      expect(
        await t.attempt(freshIp(), i % 2 === 0 ? 'ghost@example.test' : ' GHOST@example.test'),
      ).toMatchObject({ kind: 'allowed' });
    }
    const locked = await t.attempt(freshIp(), 'ghost@example.test');
    expect(locked).toMatchObject({ kind: 'locked', scope: 'account' });
    expect(locked.kind === 'locked' && locked.retryAfterMs).toBeGreaterThan(POLICY.windowMs - 60_000);
  });

  it('takes a success off the address without resetting it, and clears the account', async () => {
    const t = await replica();
    const ip = freshIp();
    for (let i = 0; i < POLICY.ipLockout - 1; i++) await t.attempt(ip, `guess${i}@example.test`);
    const good = await t.attempt(ip, 'carol@example.test');
    expect(good.kind).toBe('allowed');
    if (good.kind === 'allowed') await t.succeeded(good.ticket);
    expect((await kv.get(ipKey(ip)))?.json<{ count: number }>().count).toBe(POLICY.ipLockout - 1);
    expect(await kv.get(accountKey('carol@example.test'))).toMatchObject({ operation: 'DEL' });
    // One more failure fills the address's count; the next attempt, even a right one, waits.
    expect(await t.attempt(ip, 'guess-last@example.test')).toMatchObject({ kind: 'allowed' });
    expect(await t.attempt(ip, 'carol@example.test')).toMatchObject({ kind: 'locked', scope: 'ip' });
  });

  it('lets twenty simultaneous right logins to one account through, and still stops wrong ones', async () => {
    const t = await replica([], 10_000);
    const ip = freshIp();
    // Each right login is settled as a success once checked, as imap and smtp-inbound do.
    const right = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const verdict = await t.attempt(ip, 'erin@example.test');
        if (verdict.kind === 'allowed') await t.succeeded(verdict.ticket);
        return verdict.kind;
      }),
    );
    expect(right).toEqual(Array.from({ length: 20 }, () => 'allowed'));
    // Twenty wrong ones at once, from twenty addresses: only the account's limit gets through.
    const wrong = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const verdict = await t.attempt(freshIp(), 'erin@example.test');
        if (verdict.kind === 'allowed') t.failed(verdict.ticket);
        return verdict.kind;
      }),
    );
    expect(wrong.filter((k) => k === 'allowed')).toHaveLength(POLICY.accountLockout);
    expect(await t.attempt(freshIp(), 'erin@example.test')).toMatchObject({
      kind: 'locked',
      scope: 'account',
    });
  }, 60_000);

  it('keeps a limit in each process while NATS is stopped', async () => {
    const warnings: string[] = [];
    const t = await replica(warnings);
    const nats = env.nats;
    if (nats === undefined) throw new Error('this test needs its own nats-server');
    // Stopped for good (its data goes with it): this is the suite's last test.
    await nats.stop();
    const ip = freshIp();
    const verdicts = [];
    for (let i = 0; i <= POLICY.accountLockout; i++) verdicts.push(await t.attempt(ip, 'dave@example.test'));
    expect(verdicts.slice(0, POLICY.accountLockout).every((v) => v.kind === 'allowed')).toBe(true);
    expect(verdicts[POLICY.accountLockout]).toMatchObject({ kind: 'locked', scope: 'account' });
    expect(warnings).toContain('shared auth throttle unavailable; counting in this process');
  }, 60_000);
});
