/**
 * The delivery consumer reads the recipients' active Sieve scripts once per user for a whole
 * batch (`scriptsOncePerBatch`), not once per job: jobs planned concurrently for the same user
 * share one read, a user first seen later in the batch costs one read of that user alone, and a
 * failed read fails the jobs that wait for it (they are retried) rather than answering "no
 * script".
 */
import { describe, expect, it } from 'vitest';
import { scriptsOncePerBatch } from '../src/delivery/inbound-delivery.js';
import type { ActiveScript } from '../src/sieve/index.js';

const script = (name: string): ActiveScript => ({ name, content: 'keep;', version: name });

describe('active Sieve scripts of a delivery batch', () => {
  it('reads each user once for the batch, however many jobs plan for them', async () => {
    const reads: string[][] = [];
    const stored = new Map([['u1', script('one')]]);
    const active = scriptsOncePerBatch(async (ids) => {
      reads.push([...ids]);
      await new Promise((r) => setTimeout(r, 5));
      return new Map(ids.flatMap((id) => (stored.has(id) ? [[id, stored.get(id) as ActiveScript]] : [])));
    });
    const first = await Promise.all(Array.from({ length: 8 }, () => active(['u1', 'u2'])));
    expect(reads).toEqual([['u1', 'u2']]);
    for (const answer of first) expect([...answer]).toEqual([['u1', script('one')]]);
    // A user first seen later: only that user is read.
    const later = await active(['u2', 'u3', 'u1']);
    expect(reads).toEqual([['u1', 'u2'], ['u3']]);
    expect([...later]).toEqual([['u1', script('one')]]);
  });

  it('fails the jobs that wait on a read that failed', async () => {
    const active = scriptsOncePerBatch(() => Promise.reject(new Error('database gone')));
    const answers = await Promise.allSettled([active(['u1']), active(['u1'])]);
    expect(answers.map((a) => a.status)).toEqual(['rejected', 'rejected']);
  });
});
