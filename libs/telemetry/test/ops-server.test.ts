import { afterEach, describe, expect, it } from 'vitest';
import { OpsServer, createLogger } from '../src/index.js';

describe('OpsServer', () => {
  let server: OpsServer | undefined;
  afterEach(async () => server?.close());

  async function start(eventLoopStallMs?: number): Promise<{ ops: OpsServer; base: string }> {
    const ops = new OpsServer({
      service: 'test',
      host: '127.0.0.1',
      port: 0,
      logger: createLogger('test', 'silent'),
      checkTimeoutMs: 200,
      eventLoopStallMs,
    });
    server = ops;
    const address = await ops.listen();
    return { ops, base: `http://127.0.0.1:${address.port}` };
  }

  it('is live at once and ready only when every check passes', async () => {
    const { ops, base } = await start();
    let natsUp = false;
    ops.addCheck({ name: 'nats', check: () => (natsUp ? true : 'NATS disconnected') });
    expect((await fetch(`${base}/healthz/live`)).status).toBe(200);
    // Not ready while still starting, even if every check registered so far passes.
    natsUp = true;
    const starting = await fetch(`${base}/healthz/ready`);
    expect(starting.status).toBe(503);
    expect(await starting.json()).toMatchObject({ status: 'starting' });
    ops.markStarted();
    natsUp = false;
    const notReady = await fetch(`${base}/healthz/ready`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toMatchObject({
      checks: [{ name: 'nats', ready: false, reason: 'NATS disconnected' }],
    });
    natsUp = true;
    expect((await fetch(`${base}/healthz/ready`)).status).toBe(200);
  });

  it('treats a hanging or throwing check as not ready', async () => {
    const { ops, base } = await start();
    ops.markStarted();
    ops.addCheck({ name: 'slow', check: () => new Promise<true>(() => {}) });
    ops.addCheck({ name: 'broken', check: () => Promise.reject(new Error('boom')) });
    const response = await fetch(`${base}/healthz/ready`);
    expect(response.status).toBe(503);
    const body = (await response.json()) as { checks: { name: string; reason: string }[] };
    expect(body.checks).toEqual([
      { name: 'slow', ready: false, reason: 'no answer within 200 ms' },
      { name: 'broken', ready: false, reason: 'boom' },
    ]);
  });

  it('reports draining as not ready so load balancers stop sending work', async () => {
    const { ops, base } = await start();
    ops.setDraining();
    const response = await fetch(`${base}/healthz/ready`);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ status: 'draining' });
  });

  it('serves Prometheus metrics labelled with the service', async () => {
    const { base } = await start();
    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    expect(await response.text()).toMatch(/process_cpu_user_seconds_total\{service="test"\}/);
  });

  it('answers unknown paths with 404 and other methods with 405', async () => {
    const { base } = await start();
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/healthz/live`, { method: 'POST' })).status).toBe(405);
  });

  it('fails liveness after the event loop was blocked, counts the stall and reports the lag', async () => {
    const { base } = await start(200);
    expect((await fetch(`${base}/healthz/live`)).status).toBe(200);
    // Block the loop as a synchronous request handler would (a busy loop, not a timer).
    const until = performance.now() + 600;
    while (performance.now() < until) {
      // busy
    }
    const stalled = await fetch(`${base}/healthz/live`);
    expect(stalled.status).toBe(503);
    expect(await stalled.json()).toMatchObject({ status: 'stalled', service: 'test' });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/postmesh_event_loop_stalls_total\{service="test"\} [1-9]\d*\n/);
    const lag = Number(/postmesh_event_loop_lag_seconds\{service="test"\} ([\d.e-]+)/.exec(metrics)?.[1]);
    expect(lag).toBeGreaterThanOrEqual(0.5);
    // Live again once the loop has turned freely for the threshold.
    await new Promise((r) => setTimeout(r, 400));
    expect((await fetch(`${base}/healthz/live`)).status).toBe(200);
  });

  it('keeps liveness when the stall threshold is 0 (disabled)', async () => {
    const { base } = await start(0);
    const until = performance.now() + 300;
    while (performance.now() < until) {
      // busy
    }
    expect((await fetch(`${base}/healthz/live`)).status).toBe(200);
  });
});
