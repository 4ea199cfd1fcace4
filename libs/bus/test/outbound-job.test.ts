/**
 * The outbound job codec (src/outbound-job.ts): same framing as the inbound job, one recipient
 * domain per job. Frames already in MAIL_OUTBOUND must still decode; the rules across fields
 * (every recipient in the job's domain, sharedBy naming this job's domain) hold as before.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeOutboundJob,
  encodeOutboundJob,
  outboundJobMessageId,
  OutboundJobFormatError,
  type OutboundJob,
} from '../src/outbound-job.js';

function frameOf(json: string, body: Uint8Array = new Uint8Array()): Uint8Array {
  const text = new TextEncoder().encode(json);
  const frame = new Uint8Array(4 + text.length + body.length);
  new DataView(frame.buffer).setUint32(0, text.length, false);
  frame.set(text, 4);
  frame.set(body, 4 + text.length);
  return frame;
}

const job = (overrides: Partial<Record<keyof OutboundJob, unknown>> = {}): OutboundJob =>
  ({
    version: 1,
    spoolId: '0m4x1k2abCDEFghij_-1234',
    domain: 'example.org',
    envelope: { mailFrom: 'alice@example.test', rcptTo: ['bob@example.org', 'Carol@EXAMPLE.org'] },
    body: {
      kind: 'object',
      size: 10,
      object: 'msg/0m4x1k2abCDEFghij_-1234',
      sharedBy: ['example.org', 'x.test'],
    },
    queuedAt: '2026-11-27T19:00:00.000Z',
    messageId: 'abc@example.test',
    traceparent: '',
    ...overrides,
  }) as OutboundJob;

const RAW = new TextEncoder().encode('Subject: x\r\n\r\nhi\r\n');
const inline = (overrides: Partial<Record<keyof OutboundJob, unknown>> = {}): OutboundJob =>
  job({ body: { kind: 'inline', size: RAW.length }, ...overrides });

describe('decodeOutboundJob', () => {
  it('decodes a frame written by an earlier release (no sharedBy, attempts, an extra field)', () => {
    const json =
      '{"version":1,"spoolId":"0m4x1k2abCDEFghij_-1234","domain":"example.org","envelope":{"mailFrom":"",' +
      '"rcptTo":["bob@example.org"]},"body":{"kind":"object","size":10,"object":"msg/0m4x1k2abCDEFghij_-1234"},' +
      '"queuedAt":"2026-11-27T19:00:00.000Z","messageId":"","traceparent":"",' +
      '"attempts":[{"at":"2026-11-27T19:05:00.000Z","reply":"451 4.7.1 later"}],"priority":"bulk"}';
    const decoded = decodeOutboundJob(frameOf(json));
    expect(decoded).toEqual({ ok: true, job: JSON.parse(json) as unknown, inlineBody: undefined });
  });

  it('round-trips inline and object jobs', () => {
    const a = decodeOutboundJob(encodeOutboundJob(inline(), RAW));
    expect(a.ok && a.job).toEqual(inline());
    expect(a.ok && new TextDecoder().decode(a.inlineBody)).toBe('Subject: x\r\n\r\nhi\r\n');
    const b = decodeOutboundJob(encodeOutboundJob(job()));
    expect(b.ok && b.job).toEqual(job());
  });

  it('an encoder refuses a body that does not match the kind', () => {
    expect(() => encodeOutboundJob(inline())).toThrow(OutboundJobFormatError);
    expect(() => encodeOutboundJob(job(), RAW)).toThrow(OutboundJobFormatError);
  });

  it('dedup id: <spoolId>:<domain, lower case>:MAIL_OUTBOUND', () => {
    expect(outboundJobMessageId('s1', 'Example.ORG')).toBe('s1:example.org:MAIL_OUTBOUND');
  });

  it.each<[string, Uint8Array, string, string]>([
    [
      'an upper-case domain',
      frameOf(JSON.stringify(job({ domain: 'Example.org' }))),
      'domain',
      'expected a lower-case domain name (A-label): the recipient domain every rcptTo belongs to',
    ],
    [
      'a domain with a space',
      frameOf(JSON.stringify(job({ domain: 'a b.org' }))),
      'domain',
      'expected a lower-case domain name (A-label): the recipient domain every rcptTo belongs to',
    ],
    [
      'a recipient of another domain',
      frameOf(
        JSON.stringify(job({ envelope: { mailFrom: '', rcptTo: ['bob@example.org', 'eve@evil.test'] } })),
      ),
      'envelope.rcptTo[1]',
      'eve@evil.test is not in example.org',
    ],
    [
      'a recipient without a domain',
      frameOf(JSON.stringify(job({ envelope: { mailFrom: '', rcptTo: ['postmaster'] } }))),
      'envelope.rcptTo[0]',
      'postmaster is not in example.org',
    ],
    [
      'no recipients',
      frameOf(JSON.stringify(job({ envelope: { mailFrom: '', rcptTo: [] } }))),
      'envelope.rcptTo',
      'needs at least 1 item',
    ],
    [
      'a bad queue time',
      frameOf(JSON.stringify(job({ queuedAt: '27/11/2026' }))),
      'queuedAt',
      'expected an ISO 8601 time',
    ],
    [
      'no traceparent',
      frameOf(JSON.stringify(job({ traceparent: undefined }))),
      'traceparent',
      'is required',
    ],
    [
      'an attempt without its reply',
      frameOf(JSON.stringify(job({ attempts: [{ at: 'x' }] }))),
      'attempts[0].reply',
      'is required',
    ],
    [
      'sharedBy without this domain',
      frameOf(JSON.stringify(job({ body: { kind: 'object', size: 1, object: 'o', sharedBy: ['x.test'] } }))),
      'body.sharedBy',
      "does not list this job's domain example.org",
    ],
    [
      'sharedBy with an upper-case domain',
      frameOf(
        JSON.stringify(
          job({ body: { kind: 'object', size: 1, object: 'o', sharedBy: ['example.org', 'X.test'] } }),
        ),
      ),
      'body.sharedBy[1]',
      'expected a lower-case domain name (A-label): a job reading the object',
    ],
    [
      'an inline body of the wrong size',
      frameOf(JSON.stringify(inline()), RAW.subarray(1)),
      'body.size',
      `${RAW.length} octets, but the frame carries ${RAW.length - 1}`,
    ],
    [
      'an unknown body kind',
      frameOf(JSON.stringify(job({ body: { kind: 'url', size: 1 } }))),
      'body.kind',
      'unknown kind "url"',
    ],
  ])('refuses %s', (_what, frame, field, reason) => {
    expect(decodeOutboundJob(frame)).toEqual({ ok: false, field, problem: `${field}: ${reason}` });
  });
});
