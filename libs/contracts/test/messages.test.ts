// Wire round trips of representative messages: what one service encodes, another decodes
// identically, including the recursive search tree, oneofs, enums, timestamps and 64-bit values.
import { describe, expect, it } from 'vitest';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { directory, mailstore, trace } from '../src/index.js';

function roundTrip<T>(fns: { encode(m: T): BinaryWriter; decode(b: Uint8Array): T }, message: T): T {
  return fns.decode(fns.encode(message).finish());
}

describe('mailstore messages', () => {
  it('round-trips a nested search program (OR / NOT / AND with dates, headers and UID sets)', () => {
    // IMAP: UID 1:* OR (FROM "alice" SINCE 1-Jan-2026) NOT (SEEN KEYWORD $Junk) LARGER 1024
    const query: mailstore.SearchKey = {
      key: {
        $case: 'and',
        value: {
          keys: [
            { key: { $case: 'uid', value: { ranges: [{ first: 1, last: 0 }] } } },
            {
              key: {
                $case: 'or',
                value: {
                  keys: [
                    {
                      key: {
                        $case: 'and',
                        value: {
                          keys: [
                            { key: { $case: 'from', value: 'alice' } },
                            { key: { $case: 'since', value: { year: 2026, month: 1, day: 1 } } },
                          ],
                        },
                      },
                    },
                    {
                      key: {
                        $case: 'not',
                        value: {
                          key: {
                            $case: 'and',
                            value: {
                              keys: [
                                { key: { $case: 'flag', value: mailstore.Flag.SEEN } },
                                { key: { $case: 'keyword', value: '$Junk' } },
                              ],
                            },
                          },
                        },
                      },
                    },
                  ],
                },
              },
            },
            { key: { $case: 'larger', value: 1024 } },
            { key: { $case: 'header', value: { field: 'List-Id', value: '' } } },
          ],
        },
      },
    };
    const request: mailstore.SearchRequest = { userId: 'u1', mailboxId: 'm1', query };
    const decoded = roundTrip(mailstore.SearchRequest, request);
    expect(decoded).toEqual(request);

    // A consumer walks the tree with an exhaustive switch on $case.
    const count = (k: mailstore.SearchKey | undefined): number => {
      const node = k?.key;
      if (node === undefined) return 0;
      switch (node.$case) {
        case 'and':
        case 'or':
          return 1 + node.value.keys.reduce((n, child) => n + count(child), 0);
        case 'not':
          return 1 + count(node.value);
        default:
          return 1;
      }
    };
    expect(count(decoded.query)).toBe(12);
  });

  it('keeps modseq values above 2^32 exact (uint64 as number)', () => {
    const modseq = 2 ** 40 + 7;
    const decoded = roundTrip(mailstore.StoreFlagsResponse, {
      changed: [
        {
          uid: 4_000_000_000,
          modseq,
          flags: [mailstore.Flag.SEEN, mailstore.Flag.FLAGGED],
          keywords: ['$Forwarded'],
        },
      ],
      modifiedUids: [7, 9],
      highestModseq: modseq,
    });
    expect(decoded.changed[0]).toEqual({
      uid: 4_000_000_000,
      modseq,
      flags: ['FLAG_SEEN', 'FLAG_FLAGGED'],
      keywords: ['$Forwarded'],
    });
    expect(decoded.modifiedUids).toEqual([7, 9]);
    expect(decoded.highestModseq).toBe(modseq);
  });

  it('round-trips the header and chunk parts of an APPEND stream', () => {
    const internalDate = new Date('2026-03-01T10:20:30.123Z');
    const header = roundTrip(mailstore.AppendMessageRequest, {
      part: {
        $case: 'header',
        value: {
          userId: 'u1',
          mailbox: { selector: { $case: 'path', value: 'Archive/2026' } },
          flags: [mailstore.Flag.DRAFT],
          keywords: [],
          internalDate,
          size: 42,
        },
      },
    });
    expect(header.part?.$case).toBe('header');
    if (header.part?.$case !== 'header') throw new Error('unreachable');
    expect(header.part.value.internalDate).toEqual(internalDate);
    expect(header.part.value.mailbox?.selector).toEqual({ $case: 'path', value: 'Archive/2026' });

    const bytes = Buffer.from([0x46, 0x72, 0x6f, 0x6d, 0x3a, 0x00, 0xff]);
    const chunk = roundTrip(mailstore.AppendMessageRequest, { part: { $case: 'chunk', value: bytes } });
    expect(chunk.part).toEqual({ $case: 'chunk', value: bytes });
  });

  it('distinguishes an unset proto3 optional from zero (CHANGEDSINCE 0 is not "no CHANGEDSINCE")', () => {
    const base = { userId: 'u', mailboxId: 'm', uids: { ranges: [] }, fields: [] };
    expect(roundTrip(mailstore.FetchMessagesRequest, { ...base, changedSince: 0 }).changedSince).toBe(0);
    expect(roundTrip(mailstore.FetchMessagesRequest, base).changedSince).toBeUndefined();
  });
});

describe('directory messages', () => {
  it('round-trips every ResolveRecipient outcome', () => {
    const outcomes: directory.ResolveRecipientResponse[] = [
      {
        canonicalAddress: 'bob@example.com',
        match: directory.MatchKind.SUBADDRESS,
        result: {
          $case: 'users',
          value: { users: [{ userId: 'u2', address: 'bob@example.com', overQuota: false }], detail: 'lists' },
        },
      },
      {
        canonicalAddress: 'team@example.com',
        match: directory.MatchKind.EXACT,
        result: { $case: 'forward', value: { targets: ['a@elsewhere.example', 'b@elsewhere.example'] } },
      },
      {
        canonicalAddress: '',
        match: directory.MatchKind.UNSPECIFIED,
        result: { $case: 'notFound', value: {} },
      },
      {
        canonicalAddress: 'full@example.com',
        match: directory.MatchKind.EXACT,
        result: {
          $case: 'overQuota',
          value: { users: [{ userId: 'u3', address: 'full@example.com', overQuota: true }] },
        },
      },
      {
        canonicalAddress: 'x@suspended.example',
        match: directory.MatchKind.EXACT,
        result: { $case: 'suspended', value: { reason: directory.SuspensionReason.DOMAIN_SUSPENDED } },
      },
    ];
    for (const outcome of outcomes) {
      expect(roundTrip(directory.ResolveRecipientResponse, outcome)).toEqual(outcome);
    }
  });

  it('decodes an enum value from a newer peer as UNRECOGNIZED instead of failing', () => {
    // Field 3 (protocol) = 99, a value this version does not know (v1 is additive only).
    const writer = new BinaryWriter();
    writer.uint32((1 << 3) | 2).string('a@example.com');
    writer.uint32(3 << 3).int32(99);
    const decoded = directory.AuthenticateRequest.decode(writer.finish());
    expect(decoded.address).toBe('a@example.com');
    expect(decoded.protocol).toBe(directory.Protocol.UNRECOGNIZED);
  });

  it('skips fields it does not know, so old readers accept new writers', () => {
    const writer = new BinaryWriter();
    writer.uint32((1 << 3) | 2).string('a@example.com');
    writer.uint32((99 << 3) | 2).string('a field from the future');
    writer.uint32((2 << 3) | 0).uint64(5);
    const decoded = directory.ResolveRecipientRequest.decode(writer.finish());
    expect(decoded).toEqual({ address: 'a@example.com', messageSize: 5 });
  });

  it('maps messages to and from proto3 JSON (for the admin REST API)', () => {
    const key: directory.DkimKey = {
      id: 'k1',
      domainId: 'd1',
      domain: 'example.com',
      selector: 'pm2026a',
      algorithm: directory.DkimAlgorithm.ED25519,
      status: directory.DkimKeyStatus.ACTIVE,
      dnsName: 'pm2026a._domainkey.example.com',
      dnsTxtValue: 'v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=',
      createTime: new Date('2026-01-02T03:04:05Z'),
      activateTime: new Date('2026-01-03T00:00:00Z'),
      retireTime: undefined,
    };
    const json = directory.DkimKey.toJSON(key) as Record<string, unknown>;
    expect(json.algorithm).toBe('DKIM_ALGORITHM_ED25519');
    expect(json.createTime).toBe('2026-01-02T03:04:05.000Z');
    expect(directory.DkimKey.fromJSON(json)).toEqual(key);
  });
});

describe('trace messages', () => {
  it('round-trips an event with its attribute map', () => {
    const event: trace.TraceEvent = {
      id: 'e1',
      time: new Date('2026-05-05T05:05:05.005Z'),
      service: 'mta-delivery',
      kind: trace.EventKind.DEFERRED,
      queueId: 'q1',
      messageId: 'abc@example.com',
      sender: '',
      recipient: 'bob@remote.example',
      detail: '451 4.7.1 greylisted',
      attributes: { remote_host: 'mx.remote.example', attempt: '2' },
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    };
    expect(roundTrip(trace.TraceEvent, event)).toEqual(event);
  });
});
