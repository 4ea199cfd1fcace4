/**
 * The spans an IMAP session creates (OpenTelemetry SDK with a processor that records every span's
 * start and end): one per command, ended when the command is answered and naming the session, and
 * none held open while a client idles, so an idle connection keeps no trace state in memory.
 */
import { tracing } from '@opentelemetry/sdk-node';
import { trace } from '@postmesh/telemetry';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { InprocImap, message } from './inproc/driver.js';

const open = new Set<{ readonly name: string }>();
const ended: tracing.ReadableSpan[] = [];
const provider = new tracing.BasicTracerProvider({
  spanProcessors: [
    {
      onStart: (span) => open.add(span),
      onEnd: (span) => {
        open.delete(span);
        ended.push(span);
      },
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
    },
  ],
});

let imap: InprocImap;
beforeAll(() => {
  trace.setGlobalTracerProvider(provider);
});
afterAll(async () => {
  trace.disable();
  await provider.shutdown();
});
beforeEach(() => {
  imap = new InprocImap();
  open.clear();
  ended.length = 0;
});
afterEach(() => imap.close());

const openNames = (): string[] => [...open].map((s) => s.name);

describe('session spans', () => {
  it('ends each command span with the answer and names the session in it', async () => {
    const c = await imap.selected();
    expect(await c.command('a NOOP')).toEqual(['a OK NOOP completed']);
    expect(openNames()).toEqual([]);
    const noop = ended.find((s) => s.name === 'imap NOOP');
    expect(noop?.attributes['postmesh.imap.condition']).toBe('OK');
    expect(typeof noop?.attributes['postmesh.imap.session']).toBe('number');
    const login = ended.find((s) => s.name === 'imap LOGIN');
    expect(login?.attributes['postmesh.imap.session']).toBe(noop?.attributes['postmesh.imap.session']);
  });

  it('holds no span open while the client idles, nor while new mail is pushed (RFC 2177)', async () => {
    const c = await imap.selected();
    c.write('a IDLE\r\n');
    expect(await c.lines('\r\n')).toEqual(['+ idling']);
    expect(openNames()).toEqual([]);
    await imap.store.deliver(imap.alice.id, 'INBOX', message());
    expect(await c.lines('* 1 RECENT')).toEqual(['* 1 EXISTS', '* 1 RECENT']);
    expect(openNames()).toEqual([]);
    c.write('DONE\r\n');
    expect(await c.lines(/a (OK|NO|BAD)/)).toEqual(['a OK IDLE terminated']);
    expect(await c.command('b NOOP')).toEqual(['b OK NOOP completed']);
    expect(openNames()).toEqual([]);
  });
});
