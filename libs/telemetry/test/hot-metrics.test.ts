import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HotCounter, HotHistogram } from '../src/hot-metrics.js';

/** The exposition of one metric, its sample lines sorted (the two libraries order label sets differently). */
async function exposition(registry: Registry): Promise<string[]> {
  const text = await registry.metrics();
  const lines = text.split('\n').filter((l) => l !== '');
  return [...lines.filter((l) => l.startsWith('#')), ...lines.filter((l) => !l.startsWith('#')).sort()];
}

const BUCKETS = [0.001, 0.01, 0.1, 1];
/** Observations on both sides of, and exactly at, the bounds, in several label sets. */
const OBSERVED: [Record<string, string>, number][] = [
  [{ command: 'FETCH' }, 0.0004],
  [{ command: 'FETCH' }, 0.001],
  [{ command: 'FETCH' }, 0.0011],
  [{ command: 'STORE' }, 0.5],
  [{ command: 'STORE' }, 7],
  [{ command: 'FETCH' }, 0.1],
  [{}, 0.02],
];

describe('HotHistogram', () => {
  it('exposes the same text as a prom-client Histogram fed the same observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const hot = new HotHistogram({
      name: 'x_seconds',
      help: 'help text',
      labelNames: ['command'],
      buckets: BUCKETS,
      registers: [ours],
    });
    const reference = new Histogram({
      name: 'x_seconds',
      help: 'help text',
      labelNames: ['command'],
      buckets: BUCKETS,
      registers: [theirs],
    });
    for (const [labels, value] of OBSERVED) {
      hot.observe(labels, value);
      reference.observe(labels, value);
    }
    expect(await exposition(ours)).toEqual(await exposition(theirs));
    expect((await ours.metrics()).includes('x_seconds_bucket{le="0.01",command="FETCH"} 3')).toBe(true);
  });

  it('counts an observation equal to a bound in that bound (le is inclusive), above them all in +Inf only', async () => {
    const registry = new Registry();
    const hot = new HotHistogram({
      name: 'y',
      help: 'h',
      labelNames: ['a', 'b'],
      buckets: [1, 2],
      registers: [registry],
    });
    hot.observe({ a: 'p', b: 'q' }, 1);
    hot.observe({ a: 'p', b: 'q' }, 3);
    hot.observe({ a: 'p', b: 'r' }, 2);
    const text = await registry.metrics();
    expect(text).toContain('y_bucket{le="1",a="p",b="q"} 1');
    expect(text).toContain('y_bucket{le="2",a="p",b="q"} 1');
    expect(text).toContain('y_bucket{le="+Inf",a="p",b="q"} 2');
    expect(text).toContain('y_sum{a="p",b="q"} 4');
    expect(text).toContain('y_bucket{le="1",a="p",b="r"} 0');
    expect(text).toContain('y_count{a="p",b="r"} 1');
  });

  it('refuses NaN and bad buckets, and starts over after reset', async () => {
    const registry = new Registry();
    expect(() => new HotHistogram({ name: 'z', help: 'h', labelNames: [], buckets: [] })).toThrow(/buckets/);
    expect(() => new HotHistogram({ name: 'z', help: 'h', labelNames: [], buckets: [1, 1] })).toThrow(
      /buckets/,
    );
    const hot = new HotHistogram({
      name: 'z',
      help: 'h',
      labelNames: [],
      buckets: [1],
      registers: [registry],
    });
    expect(() => hot.observe({}, Number.NaN)).toThrow(/NaN/);
    hot.observe({}, 0.5);
    expect(await registry.metrics()).toContain('z_count 1');
    registry.resetMetrics();
    expect(await registry.metrics()).not.toContain('z_count');
  });
});

describe('HotCounter', () => {
  it('exposes the same text as a prom-client Counter, including increments by more than one', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const hot = new HotCounter({
      name: 'c_total',
      help: 'counted',
      labelNames: ['command', 'result'],
      registers: [ours],
    });
    const reference = new Counter({
      name: 'c_total',
      help: 'counted',
      labelNames: ['command', 'result'],
      registers: [theirs],
    });
    const calls: [Record<string, string>, number][] = [
      [{ command: 'FETCH', result: 'OK' }, 1],
      [{ command: 'FETCH', result: 'NO' }, 1],
      [{ command: 'FETCH', result: 'OK' }, 2.5],
      [{ result: 'BAD' }, 1],
    ];
    for (const [labels, n] of calls) {
      hot.inc(labels, n);
      reference.inc(labels, n);
    }
    expect(await exposition(ours)).toEqual(await exposition(theirs));
  });

  it('refuses to go down', () => {
    const hot = new HotCounter({ name: 'd', help: 'h', labelNames: ['a'] });
    expect(() => hot.inc({ a: 'x' }, -1)).toThrow(/only goes up/);
    expect(() => hot.inc({ a: 'x' }, Number.POSITIVE_INFINITY)).toThrow(/only goes up/);
  });
});
