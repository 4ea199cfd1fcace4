/**
 * The content filter's policy and rspamd reply parsing, without a server: every action rspamd can
 * recommend maps to one SMTP answer, and a reply that is not a verdict is a scan failure.
 */
import { describe, expect, it } from 'vitest';
import { parseVerdict, RspamdError, type RspamdVerdict } from '../src/content-filter/rspamd.js';
import { contentDecision } from '../src/plugins/content-filter.js';

const verdict = (action: RspamdVerdict['action'], extra: Partial<RspamdVerdict> = {}): RspamdVerdict => ({
  action,
  score: 7.5,
  requiredScore: 15,
  symbols: ['A', 'B'],
  ...extra,
});
const mx = { submitted: false, onFailure: 'accept' as const, hostname: 'mx.test' };

describe('contentDecision', () => {
  it('maps each rspamd action to the SMTP answer', () => {
    expect(contentDecision({ verdict: verdict('reject') }, mx)).toMatchObject({
      kind: 'refuse',
      code: 'DENY',
      dsn: { code: 550 },
    });
    for (const action of ['soft reject', 'greylist'] as const) {
      expect(contentDecision({ verdict: verdict(action) }, mx)).toMatchObject({
        kind: 'refuse',
        code: 'DENYSOFT',
        dsn: { code: 451 },
      });
    }
    expect(contentDecision({ verdict: verdict('add header') }, mx)).toMatchObject({
      kind: 'accept',
      junk: true,
    });
    expect(
      contentDecision({ verdict: verdict('rewrite subject', { subject: '[SPAM] x' }) }, mx),
    ).toMatchObject({
      kind: 'accept',
      junk: true,
      subject: '[SPAM] x',
    });
    expect(contentDecision({ verdict: verdict('no action') }, mx)).toMatchObject({
      kind: 'accept',
      junk: false,
    });
  });

  it('does not junk submitted mail, but still marks it', () => {
    const d = contentDecision({ verdict: verdict('add header') }, { ...mx, submitted: true });
    expect(d).toMatchObject({ kind: 'accept', junk: false });
    expect(d.kind === 'accept' && d.headers.some(([n, v]) => n === 'X-Spam' && v === 'Yes')).toBe(true);
  });

  it("uses rspamd's SMTP text only when it is one printable line", () => {
    const ok = contentDecision(
      { verdict: verdict('reject', { smtpMessage: 'Spam from a known source' }) },
      mx,
    );
    expect(ok.kind === 'refuse' && ok.dsn.reply).toBe('5.7.1 Spam from a known source');
    const bad = contentDecision({ verdict: verdict('reject', { smtpMessage: 'two\r\nlines' }) }, mx);
    expect(bad.kind === 'refuse' && bad.dsn.reply).toBe('5.7.1 Message refused: it looks like spam');
  });

  it('on a scan failure accepts with "not scanned", or answers 451 under tempfail', () => {
    expect(contentDecision({ failure: 'scanner unavailable' }, mx)).toEqual({
      kind: 'accept',
      junk: false,
      headers: [['X-Spam-Status', 'Unknown, not scanned by mx.test (scanner unavailable)']],
    });
    expect(contentDecision({ failure: 'x' }, { ...mx, onFailure: 'tempfail' })).toMatchObject({
      kind: 'refuse',
      dsn: { code: 451 },
    });
  });
});

describe('parseVerdict', () => {
  it('reads action, scores and symbols, highest score first', () => {
    const v = parseVerdict(
      JSON.stringify({
        action: 'add header',
        score: 8.25,
        required_score: 15,
        symbols: { LOW: { name: 'LOW', score: 0.5 }, HIGH: { name: 'HIGH', score: 6 } },
        messages: { smtp_message: 'go away' },
      }),
    );
    expect(v).toEqual({
      action: 'add header',
      score: 8.25,
      requiredScore: 15,
      symbols: ['HIGH', 'LOW'],
      smtpMessage: 'go away',
    });
  });

  it('refuses what is not a verdict', () => {
    expect(() => parseVerdict('<html>')).toThrow(RspamdError);
    expect(() => parseVerdict('[]')).toThrow(RspamdError);
    expect(() => parseVerdict(JSON.stringify({ action: 'discard' }))).toThrow(/unknown action/);
  });
});
