/**
 * Scripted conversations: each step sends one command and compares every byte the server
 * answers, up to and including the tagged response. Values the server chooses (UIDVALIDITY,
 * the time of an APPEND without a date) are replaced by placeholders before comparing.
 */
import { expect } from 'vitest';
import type { TestClient } from './client.js';

export type Step = readonly [command: string | Buffer, expected: readonly string[]];

export function normalize(text: string): string {
  return text
    .replace(/(UIDVALIDITY|APPENDUID|COPYUID) \d+/g, '$1 <v>')
    .replace(/MAILBOXID \([\w-]+\)/g, 'MAILBOXID (<id>)')
    .replace(/INTERNALDATE "[ \d]\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d [+-]\d{4}"/g, (m) =>
      m.includes('1994') ? m : 'INTERNALDATE "<now>"',
    );
}

/** Runs the steps with tags A1, A2, … and asserts the exact (normalized) bytes. */
export async function converse(client: TestClient, steps: readonly Step[], tagPrefix = 'A'): Promise<void> {
  let n = 0;
  for (const [command, expected] of steps) {
    const tag = `${tagPrefix}${++n}`;
    const actual = normalize(await client.command(tag, command));
    const wanted = expected.map((line) => line.replaceAll('<tag>', tag) + '\r\n').join('');
    expect(actual, `after ${tag} ${String(command).slice(0, 60)}`).toBe(wanted);
  }
}

export function appendCommand(mailbox: string, message: Buffer, extra = ''): Buffer {
  return Buffer.concat([Buffer.from(`APPEND ${mailbox}${extra} {${message.length}+}\r\n`), message]);
}
