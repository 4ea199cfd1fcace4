/**
 * The inbound job codec (src/jobs.ts): the frame `[u32 BE length][JSON][raw message]` is a
 * contract with jobs already sitting in MAIL_INBOUND, so frames written by earlier releases must
 * still decode; anything else is refused with the path of the offending field.
 */
import { describe, expect, it } from 'vitest';
import { decodeInboundJob, encodeInboundJob, JobFormatError, type InboundJob } from '../src/jobs.js';
import { mailEvent } from '../src/mail-event.js';

/** A frame put together by hand from JSON text, as an earlier release wrote it. */
function frameOf(json: string, body: Uint8Array = new Uint8Array()): Uint8Array {
  const text = new TextEncoder().encode(json);
  const frame = new Uint8Array(4 + text.length + body.length);
  new DataView(frame.buffer).setUint32(0, text.length, false);
  frame.set(text, 4);
  frame.set(body, 4 + text.length);
  return frame;
}

const job = (overrides: Partial<Record<keyof InboundJob, unknown>> = {}): InboundJob =>
  ({
    version: 1,
    spoolId: '0m4x1k2abCDEFghij_-1234',
    envelope: {
      mailFrom: 'alice@example.org',
      rcptTo: ['bob@example.test'],
      remoteIp: '192.0.2.7',
      helo: 'mx',
    },
    authResults: { spf: 'pass', dkim: 'pass', dmarc: 'pass', arc: 'none', dmarcPolicy: '', junk: false },
    receivedAt: '2026-12-06T10:00:00.000Z',
    messageId: 'm1@example.org',
    traceparent: '',
    body: { kind: 'inline', size: 3 },
    ...overrides,
  }) as InboundJob;

const RAW = Uint8Array.from([0x61, 0x0d, 0x0a]);

describe('decodeInboundJob', () => {
  it('decodes a frame written by an earlier release, byte for byte as it sits in the stream', () => {
    // Field order, an unknown extra field and the raw body exactly as the old encoder wrote them.
    const json =
      '{"version":1,"spoolId":"0m4x1k2abCDEFghij_-1234","envelope":{"mailFrom":"","rcptTo":["a@x.test","b@x.test"],' +
      '"remoteIp":"::1","helo":"client"},"authResults":{"spf":"none","dkim":"none","dmarc":"fail","arc":"none",' +
      '"dmarcPolicy":"quarantine","junk":true},"receivedAt":"2026-11-27T19:00:00.000Z","messageId":"",' +
      '"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","body":{"kind":"inline","size":3},' +
      '"users":["u1","u2"],"addedLater":{"x":1}}';
    const decoded = decodeInboundJob(frameOf(json, RAW));
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    expect(decoded.job).toEqual(JSON.parse(json));
    expect([...(decoded.inlineBody ?? [])]).toEqual([...RAW]);
  });

  it('round-trips inline and object jobs, with the carried queued event', () => {
    const queuedEvent = mailEvent({
      service: 'smtp-inbound',
      kind: 'queued',
      queueId: 'q',
      eventId: 'q:queued',
    });
    const inline = job({ queuedEvent });
    const a = decodeInboundJob(encodeInboundJob(inline, RAW));
    expect(a.ok && a.job).toEqual(inline);
    const object = job({ body: { kind: 'object', size: 5_000_000, object: 'msg/x' } });
    const b = decodeInboundJob(encodeInboundJob(object));
    expect(b.ok && b.job).toEqual(object);
    expect(b.ok && b.inlineBody).toBeUndefined();
  });

  it('an encoder refuses an inline job without its body and an object job with one', () => {
    expect(() => encodeInboundJob(job())).toThrow(JobFormatError);
    expect(() => encodeInboundJob(job({ body: { kind: 'object', size: 1, object: 'o' } }), RAW)).toThrow(
      JobFormatError,
    );
  });

  it.each<[string, Uint8Array, string, string]>([
    ['a short frame', Uint8Array.from([0, 0]), '', 'frame shorter than its length prefix'],
    ['a length beyond the frame', Uint8Array.from([0, 0, 1, 0, 0x7b]), '', 'JSON length beyond the frame'],
    [
      'invalid UTF-8',
      frameOf('{"a":"\u0000"}').map((b, i) => (i === 9 ? 0xff : b)),
      '',
      'job is not UTF-8 JSON',
    ],
    ['an array', frameOf('[1]'), '', 'expected an object'],
    ['another version', frameOf(JSON.stringify(job({ version: 2 })), RAW), 'version', 'expected 1'],
    [
      'a path in the spool id',
      frameOf(JSON.stringify(job({ spoolId: '../../etc' })), RAW),
      'spoolId',
      'expected 8 to 64 letters, digits, _ or -',
    ],
    ['no envelope', frameOf(JSON.stringify(job({ envelope: undefined })), RAW), 'envelope', 'is required'],
    [
      'no recipients',
      frameOf(JSON.stringify(job({ envelope: { mailFrom: '', rcptTo: [], remoteIp: '', helo: '' } })), RAW),
      'envelope.rcptTo',
      'needs at least 1 item',
    ],
    [
      'a numeric recipient',
      frameOf(
        JSON.stringify(job({ envelope: { mailFrom: '', rcptTo: ['a@x', 7], remoteIp: '', helo: '' } })),
        RAW,
      ),
      'envelope.rcptTo[1]',
      'expected a string',
    ],
    [
      'a junk verdict in words',
      frameOf(JSON.stringify(job({ authResults: { ...job().authResults, junk: 'yes' } })), RAW),
      'authResults.junk',
      'expected true or false',
    ],
    [
      'an unparsable time',
      frameOf(JSON.stringify(job({ receivedAt: 'yesterday' })), RAW),
      'receivedAt',
      'expected an ISO 8601 time',
    ],
    [
      'users that are not strings',
      frameOf(JSON.stringify(job({ users: [1] })), RAW),
      'users[0]',
      'expected a string',
    ],
    [
      'an unknown body kind',
      frameOf(JSON.stringify(job({ body: { kind: 'carrier-pigeon', size: 3 } })), RAW),
      'body.kind',
      'unknown kind "carrier-pigeon"',
    ],
    [
      'a body without kind',
      frameOf(JSON.stringify(job({ body: { size: 3 } })), RAW),
      'body.kind',
      'is required',
    ],
    [
      'an object body without its object',
      frameOf(JSON.stringify(job({ body: { kind: 'object', size: 3 } }))),
      'body.object',
      'is required',
    ],
    [
      'a negative size',
      frameOf(JSON.stringify(job({ body: { kind: 'inline', size: -1 } })), RAW),
      'body.size',
      'must be at least 0',
    ],
    [
      'a truncated inline body',
      frameOf(JSON.stringify(job()), RAW.subarray(0, 2)),
      'body.size',
      '3 octets, but the frame carries 2',
    ],
    [
      'an object job followed by octets',
      frameOf(JSON.stringify(job({ body: { kind: 'object', size: 3, object: 'msg/x' } })), RAW),
      'body.kind',
      'an object job carries no message after its JSON',
    ],
    [
      'a malformed queued event',
      frameOf(
        JSON.stringify(
          job({ queuedEvent: { eventId: 'e', time: 'x', service: 's', kind: 'queued', detail: 'a\u0000b' } }),
        ),
        RAW,
      ),
      'queuedEvent.detail',
      'contains a NUL character',
    ],
    [
      'a queued event that is a string',
      frameOf(JSON.stringify(job({ queuedEvent: 'queued' })), RAW),
      'queuedEvent',
      'expected an object',
    ],
  ])('refuses %s', (_what, frame, field, reason) => {
    expect(decodeInboundJob(frame)).toEqual({
      ok: false,
      field,
      problem: field === '' ? reason : `${field}: ${reason}`,
    });
  });
});
