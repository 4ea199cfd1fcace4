/**
 * The RFC 4314 rights model (src/acl/rights.ts): SETACL modifications (§3.1), the obsolete
 * virtual rights "c" and "d" (§2.1.1), LISTRIGHTS (§3.7), READ-ONLY (§5.2) and the flag rights
 * of STORE/APPEND/COPY (§4).
 */
import { describe, expect, it } from 'vitest';
import {
  applyModification,
  flagRight,
  isReadOnly,
  listRights,
  maySeeRights,
  parseModification,
  withVirtualRights,
} from '../src/acl/rights.js';

const modify = (current: string, text: string): string => {
  const change = parseModification(text);
  if (!change.ok) throw new Error(change.message);
  return applyModification(current, change);
};

describe('RFC 4314 rights', () => {
  it('applies replace, + and - modifications in canonical order', () => {
    expect(modify('', 'rl')).toBe('lr');
    expect(modify('lrswi', '+a')).toBe('lrswia');
    expect(modify('lrswia', '-sw')).toBe('lria');
    expect(modify('lrswi', '')).toBe('');
    expect(modify('lrswi', '+')).toBe('lrswi');
  });

  it('maps the obsolete "c" to k and "d" to x t e, and shows them again (§2.1.1 examples)', () => {
    // "SETACL INBOX/Drafts David lrswida" → d expands (here to x t e).
    expect(withVirtualRights(modify('', 'lrswida'))).toBe('lrswixtead');
    // "Chris lrswi" then "+cda" → lrswi + k + xte + a.
    expect(withVirtualRights(modify('lrswi', '+cda'))).toBe('lrswikxteacd');
    expect(withVirtualRights('lr')).toBe('lr');
    expect(withVirtualRights('lrk')).toBe('lrkc');
    expect(withVirtualRights('lrt')).toBe('lrtd');
  });

  it('refuses rights it does not know, upper case included (§3.1 MUST NOT ignore)', () => {
    expect(parseModification('lrQswicda')).toEqual({ ok: false, message: 'the right "Q" is not supported' });
    expect(parseModification('lrqswicda')).toMatchObject({ ok: false });
    expect(parseModification('lr0')).toMatchObject({ ok: false });
    expect(parseModification('+-l')).toMatchObject({ ok: false });
  });

  it('LISTRIGHTS: every right alone for a grantee, all required for the owner', () => {
    expect(listRights(false)).toEqual({
      required: '',
      optional: ['l', 'r', 's', 'w', 'i', 'p', 'k', 'x', 't', 'e', 'a', 'c', 'd'],
    });
    expect(listRights(true)).toEqual({ required: 'lrswipkxteacd', optional: [] });
  });

  it('READ-ONLY without i, e, w, s and t; MYRIGHTS needs one of l r i k x a', () => {
    expect(isReadOnly('lr')).toBe(true);
    expect(isReadOnly('lrp')).toBe(true);
    for (const right of ['i', 'e', 'w', 's', 't']) expect(isReadOnly(`lr${right}`)).toBe(false);
    expect(maySeeRights('')).toBe(false);
    expect(maySeeRights('p')).toBe(false);
    expect(maySeeRights('sw')).toBe(false);
    for (const right of ['l', 'r', 'i', 'k', 'x', 'a']) expect(maySeeRights(right)).toBe(true);
  });

  it('names the right each flag needs (§4 STORE)', () => {
    expect(flagRight('\\Seen')).toBe('s');
    expect(flagRight('\\SEEN')).toBe('s');
    expect(flagRight('\\Deleted')).toBe('t');
    expect(flagRight('\\Flagged')).toBe('w');
    expect(flagRight('$Junk')).toBe('w');
  });
});
