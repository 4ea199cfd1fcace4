/**
 * Sessions share one clock (src/clock.ts) for autologout (RFC 9051 §5.4) and the IDLE poll, so an
 * idling connection holds no timer of its own (memory per idle connection). These tests
 * drive real Session objects over in-memory streams with stub storage: no sockets, no servers.
 */
import { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuthThrottle } from '@postmesh/bus';
import { directory as dir } from '@postmesh/contracts';
import { createLogger } from '@postmesh/telemetry';
import { SessionClock } from '../src/clock.js';
import type { ImapServices, SessionLimits } from '../src/commands/context.js';
import { Session } from '../src/session.js';
import type { Directory, Mailstore } from '../src/storage.js';

/** The server end of an in-memory connection; `output` is everything the server wrote. */
class Pipe extends Duplex {
  output = '';
  override _read(): void {}
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.output += chunk.toString('latin1');
    done();
  }
  send(line: string): void {
    this.push(Buffer.from(line, 'latin1'));
  }
}

const LIMITS: SessionLimits = {
  appendLimit: 1024 * 1024,
  preAuthLiteralLimit: 8 * 1024,
  maxLineLength: 8 * 1024,
  idleTimeoutMs: 30 * 60_000,
  preAuthTimeoutMs: 300,
  commandRate: 1000,
  commandBurst: 4000,
  idlePollMs: 60_000,
  maxAuthFailuresPerConnection: 5,
};

const throttle: AuthThrottle = {
  attempt: () =>
    Promise.resolve({
      kind: 'allowed',
      delayMs: 0,
      ticket: { ipKey: 'ip.test', accountKey: 'account.test', shared: false },
    }),
  succeeded: () => Promise.resolve(),
  release: () => Promise.resolve(),
  failed: () => undefined,
};
const directory: Directory = {
  authenticate: (request) =>
    Promise.resolve({
      result: {
        $case: 'success',
        value: dir.AuthSuccess.fromPartial({ user: { id: 'u1', address: request.address } }),
      },
    }),
};

function services(limits: Partial<SessionLimits> = {}): ImapServices {
  return {
    mailstore: {} as Mailstore,
    directory,
    throttle,
    logger: createLogger('imap-test', 'silent'),
    limits: { ...LIMITS, ...limits },
    allowPlaintext: true,
    starttls: false,
    serverName: 'Test IMAP',
    version: '0',
  };
}

async function until(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const open: Session[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close('test over')));
});

function start(clock: SessionClock, svc: ImapServices, watchers?: (() => void)[]): Pipe {
  const pipe = new Pipe();
  const session = new Session({
    socket: pipe,
    remoteAddress: '127.0.0.1',
    tls: false,
    secureContext: null,
    services: svc,
    id: open.length + 1,
    subscribeChanges: (_user, onChange) => {
      watchers?.push(onChange);
      return () => undefined;
    },
    onClose: () => undefined,
    clock,
  });
  open.push(session);
  void session.run();
  return pipe;
}

describe('SessionClock', () => {
  it('derives its period from the shortest deadline, between 50 ms and 1 s', () => {
    expect(SessionClock.periodFor(60_000)).toBe(1_000);
    expect(SessionClock.periodFor(1_500)).toBe(150);
    expect(SessionClock.periodFor(100)).toBe(50);
  });

  it('ticks every member and stops ticking one that left', async () => {
    const clock = new SessionClock(20);
    const seen = { a: 0, b: 0 };
    const a = { tick: (): void => void seen.a++ };
    const b = { tick: (): void => void seen.b++ };
    clock.add(a);
    clock.add(b);
    await until(() => seen.a >= 2 && seen.b >= 2);
    clock.delete(b);
    const bAfter = seen.b;
    const aAfter = seen.a;
    await until(() => seen.a >= aAfter + 2);
    expect(seen.b).toBe(bAfter);
    clock.delete(a);
    expect(clock.size).toBe(0);
  });
});

describe('sessions on the shared clock', () => {
  it('logs out a silent unauthenticated connection with BYE (RFC 9051 §5.4) and leaves the clock', async () => {
    const clock = new SessionClock(SessionClock.periodFor(LIMITS.preAuthTimeoutMs));
    const pipe = start(clock, services());
    await until(() => pipe.output.includes('* OK'));
    expect(clock.size).toBe(1);
    await until(() => pipe.output.includes('* BYE'));
    expect(pipe.output).toContain('* BYE Autologout; idle for too long\r\n');
    await until(() => clock.size === 0);
  });

  it('keeps a connection that keeps talking, even past the autologout time', async () => {
    const clock = new SessionClock(SessionClock.periodFor(LIMITS.preAuthTimeoutMs));
    const pipe = start(clock, services());
    for (let i = 0; i < 6; i++) {
      pipe.send(`n${i} NOOP\r\n`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await until(() => pipe.output.includes('n5 OK'));
    expect(pipe.output).not.toContain('* BYE');
  });

  it('holds no timer per idling session: 200 sessions in IDLE add at most the one shared interval', async () => {
    const clock = new SessionClock(SessionClock.periodFor(LIMITS.preAuthTimeoutMs));
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const pipes: Pipe[] = [];
    for (let i = 0; i < 200; i++) {
      const pipe = start(clock, services());
      pipe.send('a LOGIN user@example.test secret\r\nb IDLE\r\n');
      pipes.push(pipe);
    }
    await until(() => pipes.every((p) => p.output.includes('+ idling')));
    expect(clock.size).toBe(200);
    expect(timers() - before).toBeLessThanOrEqual(1);
    pipes[0]!.send('DONE\r\n');
    await until(() => pipes[0]!.output.includes('b OK IDLE terminated'));
  });

  it('stays in IDLE through change events and poll times, and ends it on a DONE split across packets (RFC 2177)', async () => {
    const clock = new SessionClock(20);
    const watchers: (() => void)[] = [];
    const pipe = start(clock, services({ idlePollMs: 100 }), watchers);
    pipe.send('a LOGIN user@example.test secret\r\nb IDLE\r\n');
    await until(() => pipe.output.includes('+ idling'));
    expect(watchers).toHaveLength(1);
    // Several polls and a change event pass while idling; the session stays in IDLE throughout.
    watchers[0]!();
    await new Promise((r) => setTimeout(r, 350));
    expect(pipe.output).not.toContain('b OK');
    pipe.send('DO');
    await new Promise((r) => setTimeout(r, 50));
    pipe.send('NE\r\n');
    await until(() => pipe.output.includes('b OK IDLE terminated\r\n'));
  });
});
