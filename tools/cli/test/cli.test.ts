/** The CLI's parsing, tables and usage errors, without a server. */
import { describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from '../src/args.js';
import { main } from '../src/main.js';
import { formatTable } from '../src/table.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t) }, out, err };
}

describe('parseArgs', () => {
  it('reads positionals, valued and boolean flags, repeated flags and --', () => {
    const a = parseArgs([
      'alias',
      'add',
      'x@a.test',
      '--user',
      'u1',
      '--user=u2',
      '--json',
      '--',
      '--literal',
    ]);
    expect(a.positionals).toEqual(['alias', 'add', 'x@a.test', '--literal']);
    expect(a.flags.get('user')).toEqual(['u1', 'u2']);
    expect(a.flags.get('json')).toEqual(['true']);
    expect(() => parseArgs(['user', 'list', '--domain'])).toThrow(UsageError);
  });
});

describe('formatTable', () => {
  it('aligns columns and shows empty values as -', () => {
    const table = formatTable(
      [
        { name: 'a.test', status: 'active', list: ['x', 'y'] },
        { name: 'longer.example', status: '', list: [] },
      ],
      [
        { title: 'name', value: (r) => r.name },
        { title: 'status', value: (r) => r.status },
        { title: 'list', value: (r) => r.list },
      ],
    );
    expect(table).toBe(
      'NAME            STATUS  LIST\na.test          active  x,y\nlonger.example  -       -\n',
    );
  });
});

describe('main', () => {
  it('exits 2 with the usage on no command, an unknown command or no token', async () => {
    const none = capture();
    expect(await main([], {}, none.io)).toBe(2);
    expect(none.out.join('')).toContain('Usage: postmesh');
    const noToken = capture();
    expect(await main(['domain', 'list'], {}, noToken.io)).toBe(2);
    expect(noToken.err.join('')).toContain('POSTMESH_TOKEN');
    const unknown = capture();
    expect(await main(['domain', 'explode'], { POSTMESH_TOKEN: 'pmt_x' }, unknown.io)).toBe(2);
    expect(unknown.err.join('')).toContain('unknown command: domain explode');
  });

  it('exits 1 with a clear message when the server cannot be reached', async () => {
    const c = capture();
    expect(
      await main(
        ['domain', 'list'],
        { POSTMESH_TOKEN: 'pmt_x', POSTMESH_API_URL: 'http://127.0.0.1:9' },
        c.io,
      ),
    ).toBe(1);
    expect(c.err.join('')).toContain('cannot reach http://127.0.0.1:9');
  });
});
