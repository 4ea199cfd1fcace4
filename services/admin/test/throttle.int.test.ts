/**
 * The per-IP login throttle shared by admin replicas through the JetStream KV bucket
 * `auth-failures` (real NATS): failures counted by one replica refuse the address on another,
 * a success clears it everywhere, and with NATS gone each replica still throttles on its own.
 */
import { Kvm, type KV } from '@nats-io/kv';
import { Bus, Buckets } from '@postmesh/bus';
import { createLogger } from '@postmesh/telemetry';
import { startTestEnvironment, type TestEnvironment } from '@postmesh/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminIpKey, KvLoginThrottle } from '../src/auth/throttle.js';

let env: TestEnvironment;
let bus: Bus;
let kv: KV;
const warnings: string[] = [];

beforeAll(async () => {
  env = await startTestEnvironment({ mongo: false });
  bus = await Bus.connect({
    ...env.busOptions('operator'),
    name: 'admin-throttle-test',
    logger: createLogger('admin-throttle-test', 'silent'),
    replicas: 1,
  });
  kv = await new Kvm(bus.nc).open(Buckets.AUTH_FAILURES);
}, 60_000);
afterAll(async () => {
  await bus?.drain();
  await env?.stop();
});

const replica = (kvOf: () => Promise<KV> = () => Promise.resolve(kv), now: () => number = Date.now) =>
  new KvLoginThrottle(kvOf, 3, 60_000, (_e, what) => warnings.push(what), now);

describe('KvLoginThrottle', () => {
  it('refuses an address on every replica once one replica counted its failures', async () => {
    const a = replica();
    const b = replica();
    const ip = '192.0.2.10';
    for (let i = 0; i < 3; i++) await (i % 2 === 0 ? a : b).fail(ip);
    // Neither replica saw 3 failures itself; both refuse.
    expect(await a.retryAfter(ip)).toBeGreaterThan(50);
    expect(await b.retryAfter(ip)).toBeGreaterThan(50);
    expect(await replica().retryAfter('192.0.2.11')).toBe(0);
    const entry = await kv.get(adminIpKey(ip));
    expect(entry?.json<{ times: number[] }>().times).toHaveLength(3);

    await b.succeed(ip);
    expect(await a.retryAfter(ip)).toBe(0);
    expect(await kv.get(adminIpKey(ip))).toMatchObject({ operation: 'DEL' });
  });

  it('keeps IPv6 keys valid, and forgets failures after the window', async () => {
    let now = Date.now();
    const t = replica(undefined, () => now);
    const ip = '2001:db8::7';
    for (let i = 0; i < 3; i++) await t.fail(ip);
    expect(adminIpKey(ip)).toBe('admin-ip.2001_db8__7');
    expect(await replica(undefined, () => now).retryAfter(ip)).toBe(60);
    now += 60_001;
    expect(await replica(undefined, () => now).retryAfter(ip)).toBe(0);
  });

  it('counts locally when the KV store is unavailable (throttling stays on)', async () => {
    const down = replica(() => Promise.reject(new Error('no NATS')));
    for (let i = 0; i < 3; i++) await down.fail('192.0.2.20');
    expect(await down.retryAfter('192.0.2.20')).toBeGreaterThan(50);
    expect(warnings).toContain('could not record a failed login in the shared throttle');
  });
});
