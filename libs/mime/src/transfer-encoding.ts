/**
 * Content-Transfer-Encoding decoding (RFC 2045 §6): base64 (§6.8), quoted-printable (§6.7) and the
 * identity encodings 7bit, 8bit, binary (§6.2). Decoders are incremental so a large part can be
 * decoded while it streams (IMAP BINARY[], RFC 3516), and lenient: malformed input never throws.
 *
 * - base64: characters outside the alphabet (whitespace, line breaks, garbage) are ignored, as
 *   §6.8 requires of decoders; `=` ends the current quantum, so concatenated padded segments decode.
 * - quoted-printable: `=XX` (either case) decodes; `=` + optional trailing whitespace + line break is
 *   a soft line break; any other `=` sequence is kept literally (§6.7 note (2) suggests this);
 *   trailing whitespace on a line is removed (§6.7 rule (3)).
 */

import { CR, HTAB, LF, SP } from './bytes.js';

/** An incremental transfer decoder. */
export interface TransferDecoder {
  update(chunk: Uint8Array): Uint8Array;
  final(): Uint8Array;
}

/** Encodings for which decoding is the identity (RFC 2045 §6.2). */
const IDENTITY = new Set(['7BIT', '8BIT', 'BINARY', '']);

/** Normalise a Content-Transfer-Encoding value (`" Base64 "` → `BASE64`). */
export function normalizeTransferEncoding(encoding: string | null | undefined): string {
  return (encoding ?? '').trim().toUpperCase();
}

/** True when this module can decode the encoding (else IMAP BINARY answers `[UNKNOWN-CTE]`, RFC 3516 §4.3). */
export function isKnownTransferEncoding(encoding: string | null | undefined): boolean {
  const e = normalizeTransferEncoding(encoding);
  return IDENTITY.has(e) || e === 'BASE64' || e === 'QUOTED-PRINTABLE';
}

/** A decoder for `encoding`, or null when the encoding is unknown. */
export function createTransferDecoder(encoding: string | null | undefined): TransferDecoder | null {
  const e = normalizeTransferEncoding(encoding);
  if (IDENTITY.has(e)) return { update: (c) => c, final: () => new Uint8Array(0) };
  if (e === 'BASE64') return new Base64Decoder();
  if (e === 'QUOTED-PRINTABLE') return new QuotedPrintableDecoder();
  return null;
}

/** One-shot decoding; null when the encoding is unknown. */
export function decodeTransferEncoding(
  bytes: Uint8Array,
  encoding: string | null | undefined,
): Uint8Array | null {
  const decoder = createTransferDecoder(encoding);
  if (decoder === null) return null;
  const a = decoder.update(bytes);
  const b = decoder.final();
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

const B64 = new Int8Array(256).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('').forEach((c, i) => {
  B64[c.charCodeAt(0)] = i;
});
const EQ = 0x3d;

class Base64Decoder implements TransferDecoder {
  private quantum = 0;
  private count = 0;

  update(chunk: Uint8Array): Uint8Array {
    const out = new Uint8Array(Math.floor(((chunk.length + 4) * 3) / 4) + 3);
    let o = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i] as number;
      const v = B64[c] as number;
      if (v < 0) {
        if (c === EQ) o = this.flush(out, o);
        continue;
      }
      this.quantum = (this.quantum << 6) | v;
      if (++this.count === 4) {
        out[o++] = (this.quantum >> 16) & 0xff;
        out[o++] = (this.quantum >> 8) & 0xff;
        out[o++] = this.quantum & 0xff;
        this.quantum = 0;
        this.count = 0;
      }
    }
    return out.subarray(0, o);
  }

  final(): Uint8Array {
    const out = new Uint8Array(2);
    return out.subarray(0, this.flush(out, 0));
  }

  /** Emit the bytes of an incomplete quantum (2 or 3 sextets); a lone sextet carries no full byte. */
  private flush(out: Uint8Array, o: number): number {
    if (this.count === 2) {
      out[o++] = (this.quantum >> 4) & 0xff;
    } else if (this.count === 3) {
      out[o++] = (this.quantum >> 10) & 0xff;
      out[o++] = (this.quantum >> 2) & 0xff;
    }
    this.quantum = 0;
    this.count = 0;
    return o;
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Whitespace held back until we know whether it is trailing; bounded so memory stays bounded. */
const MAX_PENDING_WS = 4096;

class QuotedPrintableDecoder implements TransferDecoder {
  /** 0: plain; 1: after `=`; 2: after `=X` (hex); 3: after `=` + whitespace (soft break candidate). */
  private state = 0;
  private held: number[] = [];
  private pendingWs: number[] = [];

  update(chunk: Uint8Array): Uint8Array {
    const out: number[] = [];
    for (let i = 0; i < chunk.length; i++) this.byte(chunk[i] as number, out);
    return Uint8Array.from(out);
  }

  final(): Uint8Array {
    const out: number[] = [];
    // A trailing `=` (+ whitespace) at the very end is a soft break; `=X` is kept literally.
    if (this.state === 2) out.push(...this.held);
    // Trailing whitespace on the last line is deleted (RFC 2045 §6.7 rule (3)).
    this.state = 0;
    this.held = [];
    this.pendingWs = [];
    return Uint8Array.from(out);
  }

  private byte(c: number, out: number[]): void {
    switch (this.state) {
      case 1:
        if (hexValue(c) >= 0) {
          this.held.push(c);
          this.state = 2;
        } else if (c === LF) {
          this.reset(); // soft line break `=\n`
        } else if (c === CR || c === SP || c === HTAB) {
          this.held.push(c);
          this.state = 3;
        } else {
          this.literal(c, out);
        }
        return;
      case 2:
        if (hexValue(c) >= 0) {
          out.push(hexValue(this.held[1] as number) * 16 + hexValue(c));
          this.reset();
        } else {
          this.literal(c, out);
        }
        return;
      case 3:
        if (c === LF)
          this.reset(); // soft line break with transport padding
        else if ((c === CR || c === SP || c === HTAB) && this.held.length < MAX_PENDING_WS) this.held.push(c);
        else this.literal(c, out);
        return;
      default:
        this.plain(c, out);
    }
  }

  private reset(): void {
    this.state = 0;
    this.held = [];
  }

  /** An `=` sequence that is not an escape: keep it as written, then reprocess `c`. */
  private literal(c: number, out: number[]): void {
    out.push(...this.held);
    this.reset();
    this.plain(c, out);
  }

  private plain(c: number, out: number[]): void {
    if (c === SP || c === HTAB || c === CR) {
      if (this.pendingWs.length >= MAX_PENDING_WS) {
        out.push(...this.pendingWs);
        this.pendingWs = [];
      }
      this.pendingWs.push(c);
      return;
    }
    if (c === LF) {
      if (this.pendingWs[this.pendingWs.length - 1] === CR) out.push(CR);
      this.pendingWs = [];
      out.push(LF);
      return;
    }
    if (this.pendingWs.length > 0) {
      out.push(...this.pendingWs);
      this.pendingWs = [];
    }
    if (c === EQ) {
      this.held = [EQ];
      this.state = 1;
      return;
    }
    out.push(c);
  }
}
