/**
 * The frame every queued mail job uses (inbound and outbound, libs/bus README):
 * `[u32 BE length L][L octets UTF-8 JSON][raw message, for inline jobs]`. Only the framing lives
 * here; each job kind validates its own JSON.
 */

/** Frames a job's JSON and, for an inline job, the raw message after it. */
export function encodeJobFrame(job: object, inlineBody?: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(job));
  const frame = new Uint8Array(4 + json.length + (inlineBody?.length ?? 0));
  new DataView(frame.buffer).setUint32(0, json.length, false);
  frame.set(json, 4);
  if (inlineBody) frame.set(inlineBody, 4 + json.length);
  return frame;
}

export type ReadJobFrame =
  | { readonly ok: true; readonly fields: Record<string, unknown>; readonly rest: Uint8Array }
  | { readonly ok: false; readonly problem: string };

/** Splits a frame read from a stream (another process wrote it: trust nothing). */
export function readJobFrame(frame: Uint8Array): ReadJobFrame {
  if (frame.length < 4) return { ok: false, problem: 'frame shorter than its length prefix' };
  const length = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(0, false);
  if (4 + length > frame.length) return { ok: false, problem: 'JSON length beyond the frame' };
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(frame.subarray(4, 4 + length)));
  } catch {
    return { ok: false, problem: 'job is not UTF-8 JSON' };
  }
  if (typeof value !== 'object' || value === null) return { ok: false, problem: 'job is not an object' };
  return { ok: true, fields: value as Record<string, unknown>, rest: frame.subarray(4 + length) };
}
