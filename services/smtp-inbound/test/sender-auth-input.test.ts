/**
 * mailauth gets the header section alone for a message without DKIM or ARC signatures
 * (sender-auth.ts `headerOnlyMessage`): its verdict must be the one the whole message gets.
 */
import { authenticate } from 'mailauth';
import { describe, expect, it } from 'vitest';
import type { HarakaHeader } from '../src/haraka/types.js';
import { headerOnlyMessage, verdictOf } from '../src/plugins/sender-auth.js';

const zones: Record<string, Record<string, unknown>> = {
  TXT: {
    'sender.test': [['v=spf1 ip4:192.0.2.10 -all']],
    '_dmarc.sender.test': [['v=DMARC1; p=reject']],
    'quarantined.test': [['v=spf1 -all']],
    '_dmarc.quarantined.test': [['v=DMARC1; p=quarantine']],
  },
};
const resolver = (name: string, rrtype: string): Promise<unknown> => {
  const answer = zones[rrtype.toUpperCase()]?.[name.toLowerCase()];
  return answer === undefined
    ? Promise.reject(Object.assign(new Error(`ENOTFOUND ${name}`), { code: 'ENOTFOUND' }))
    : Promise.resolve(answer);
};

/** The header section split into fields (folded lines stay with their field), as Haraka keeps it. */
function headerOf(message: string): HarakaHeader {
  const section = message.slice(0, message.indexOf('\r\n\r\n') + 2);
  const fields: string[] = [];
  for (const line of section.split(/(?<=\r\n)/)) {
    if (/^[ \t]/.test(line) && fields.length > 0) fields[fields.length - 1] += line.replace(/\r\n$/, '\n');
    else if (line !== '') fields.push(line.replace(/\r\n$/, '\n'));
  }
  const all = (name: string) =>
    fields
      .filter((f) => f.toLowerCase().startsWith(`${name.toLowerCase()}:`))
      .map((f) => f.slice(name.length + 1));
  return { header_list: fields, get_all: all, get: (name) => all(name).join('\n') };
}

const message = (from: string, extra = '') =>
  [
    'Received: from mx.sender.test (mx.sender.test [192.0.2.10])\r\n\tby mx.example.test; Sun, 6 Dec 2026 10:00:00 +0000',
    `From: Alice <alice@${from}>`,
    'To: demo@example.test',
    'Subject: a folded',
    '  subject line',
    'Message-ID: <1@sender.test>',
    ...(extra === '' ? [] : [extra]),
    '',
    'Body line one.',
    '..a dot-stuffed line is not our business here',
    '',
  ].join('\r\n');

describe('sender verification input', () => {
  const cases = [
    {
      name: 'SPF pass, DMARC pass',
      from: 'sender.test',
      ip: '192.0.2.10',
      mailFrom: 'alice@sender.test',
      spf: 'pass',
      dmarc: 'pass',
    },
    {
      name: 'SPF fail, DMARC p=reject',
      from: 'sender.test',
      ip: '198.51.100.7',
      mailFrom: 'alice@sender.test',
      spf: 'fail',
      dmarc: 'fail',
    },
    {
      name: 'SPF fail, DMARC p=quarantine',
      from: 'quarantined.test',
      ip: '192.0.2.10',
      mailFrom: 'bob@quarantined.test',
      spf: 'fail',
      dmarc: 'fail',
    },
    { name: 'no records', from: 'nowhere.test', ip: '192.0.2.10', mailFrom: '', spf: 'none', dmarc: 'none' },
  ];
  for (const c of cases) {
    it(`gives the whole message's verdict from the header section alone: ${c.name}`, async () => {
      const raw = message(c.from);
      const headersOnly = headerOnlyMessage(headerOf(raw));
      expect(headersOnly?.toString()).toBe(raw.slice(0, raw.indexOf('\r\n\r\n') + 4));
      const options = {
        ip: c.ip,
        helo: 'mx.sender.test',
        sender: c.mailFrom,
        mta: 'mx.example.test',
        resolver,
      };
      const whole = await authenticate(Buffer.from(raw), { ...options, disableBimi: true } as never);
      const part = await authenticate(headersOnly ?? Buffer.alloc(0), {
        ...options,
        disableBimi: true,
      } as never);
      expect(verdictOf(part)).toEqual(verdictOf(whole));
      expect(verdictOf(whole)).toMatchObject({ spf: c.spf, dmarc: c.dmarc, dkim: 'none' });
      expect(part.headers).toEqual(whole.headers);
    });
  }

  it('needs the whole message once a DKIM or ARC signature is present', () => {
    const signed = 'DKIM-Signature: v=1; a=rsa-sha256; d=sender.test; s=s1; bh=x; b=y';
    expect(headerOnlyMessage(headerOf(message('sender.test', signed)))).toBeUndefined();
    expect(
      headerOnlyMessage(headerOf(message('sender.test', 'ARC-Seal: i=1; a=rsa-sha256; cv=none'))),
    ).toBeUndefined();
    expect(headerOnlyMessage({ get: () => '', get_all: () => [] })).toBeUndefined();
  });
});
