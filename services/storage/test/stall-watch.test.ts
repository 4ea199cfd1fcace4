import { describe, expect, it } from 'vitest';
import type { Logger } from '@postmesh/telemetry';
import { KeyedLock } from '../src/db/keyed-lock.js';
import { watchStalls } from '../src/db/stall-watch.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('watchStalls', () => {
  it('logs a lock held past the threshold with its key, and stops logging once it is released', async () => {
    const warnings: { fields: Record<string, unknown>; msg: string }[] = [];
    const logger = {
      warn: (fields: Record<string, unknown>, msg: string) => warnings.push({ fields, msg }),
    } as unknown as Logger;
    const lock = new KeyedLock();
    let release!: () => void;
    const holding = lock.run(
      'postmesh:6b15b2cd180874b64891a53d',
      () => new Promise<void>((r) => (release = r)),
    );
    const stop = watchStalls({ logger, locks: { mailbox: lock }, thresholdMs: 30, intervalMs: 20 });
    try {
      await tick(120);
      expect(warnings.length).toBeGreaterThan(0);
      expect(warnings[0]?.fields).toMatchObject({
        lock: 'mailbox',
        key: 'postmesh:6b15b2cd180874b64891a53d',
      });
      expect(warnings[0]?.fields.heldMs).toBeGreaterThanOrEqual(30);
      release();
      await holding;
      const seen = warnings.length;
      await tick(80);
      expect(warnings.length).toBe(seen);
    } finally {
      stop();
    }
  });
});
