/**
 * How a queue hook's result reaches the client, on Haraka's real Connection class: the path that
 * answered `250 Message Queued` for submitted mail NATS never stored.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { HookCode } from '../src/haraka/types.js';
import { COULD_NOT_QUEUE, answerQueueResults, type QueueResultResponder } from '../src/plugins/queue.js';

const { Connection } = createRequire(import.meta.url)('Haraka/connection.js') as {
  Connection: { prototype: object };
};

function harakaConnection() {
  const replies: [number, string][] = [];
  const conn = Object.assign(Object.create(Connection.prototype) as object, {
    remote: { ip: '192.0.2.1', port: 40000, closed: false },
    transaction: { uuid: 'T1', results: { add: () => undefined }, msg_status: undefined },
    msg_count: { accept: 0, tempfail: 0, reject: 0 },
    respond: (code: number, message: string, done?: () => void) => {
      replies.push([code, message]);
      done?.();
    },
    reset_transaction: (done: () => void) => done(),
    resume: () => undefined,
    lognotice: () => undefined,
    logerror: () => undefined,
  }) as unknown as QueueResultResponder & { msg_count: { tempfail: number } };
  return { conn, replies };
}

describe('HookCode', () => {
  it("has haraka-constants' numbers", () => {
    // The copy Haraka itself loads.
    const fromHaraka = createRequire(createRequire(import.meta.url).resolve('Haraka/connection.js'));
    const constants = fromHaraka('haraka-constants') as Record<string, unknown>;
    for (const [name, value] of Object.entries(HookCode)) {
      expect([name, constants[name.toLowerCase()]]).toEqual([name, value]);
    }
  });
});

describe('queue results (RFC 5321 §4.2.5: no 250 without responsibility)', () => {
  it('Haraka alone answers DENYSOFT with 450, not the 451 of a local failure', () => {
    const { conn, replies } = harakaConnection();
    conn.queue_respond(HookCode.DENYSOFT, COULD_NOT_QUEUE);
    expect(replies).toEqual([[450, '4.3.0 Could not queue the message, try again later (T1)']]);
  });

  it.each([
    ['queue_respond', HookCode.DENYSOFT],
    ['queue_outbound_respond', HookCode.DENYSOFT],
    ['queue_outbound_respond', HookCode.CONT],
    ['queue_outbound_respond', HookCode.DENYSOFTDISCONNECT],
    ['queue_respond', HookCode.CONT],
  ] as const)('%s with %i: 451 4.3.0, and the session goes on', (method, retval) => {
    const { conn, replies } = harakaConnection();
    answerQueueResults(conn);
    conn[method](retval, retval === HookCode.CONT ? undefined : COULD_NOT_QUEUE);
    expect(replies).toEqual([[451, '4.3.0 Could not queue the message, try again later (T1)']]);
    expect(conn.msg_count.tempfail).toBe(1);
  });

  it('a plugin timeout (DENYSOFT "plugin timeout") on queue_outbound is 451 4.3.0 too', () => {
    const { conn, replies } = harakaConnection();
    answerQueueResults(conn);
    conn.queue_outbound_respond(HookCode.DENYSOFT, 'plugin timeout');
    expect(replies).toEqual([[451, '4.3.0 Could not queue the message, try again later (T1)']]);
  });

  it('DENY stays a 550', () => {
    const { conn, replies } = harakaConnection();
    answerQueueResults(conn);
    conn.queue_outbound_respond(HookCode.DENY, '5.7.1 refused');
    expect(replies).toEqual([[550, '5.7.1 refused (T1)']]);
  });
});
