/**
 * Every command the server accepts (the dispatch table, src/commands/index.ts) and every
 * capability it advertises (libs/imap-protocol/src/capabilities.ts) is exercised by a file of this in-process suite.
 * Adding a command or a capability without a test here fails this file: add the test (one file
 * per command or RFC command group), and for a capability the syntax that exercises it below.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { capabilityList } from '@postmesh/imap-protocol';
import { COMMANDS } from '../../src/commands/index.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** Test sources, without this file and capability.test.ts (which lists every name verbatim). */
const SOURCES = readdirSync(HERE)
  .filter((f) => f.endsWith('.test.ts') && f !== 'coverage.test.ts' && f !== 'capability.test.ts')
  .map((f) => ({ file: f, text: readFileSync(join(HERE, f), 'utf8') }));

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A command as a test sends it: a string starting with a tag, then the command name. */
function sentBy(name: string): string[] {
  const sent = new RegExp(`['"\`][A-Za-z0-9]+ ${escape(name)}(?=[ '"\`\\\\])`);
  return SOURCES.filter((s) => sent.test(s.text)).map((s) => s.file);
}

/** For each advertised capability, what a test that exercises it sends or expects. */
const EXERCISED_BY: Readonly<Record<string, RegExp>> = {
  IMAP4rev2: /ENABLE IMAP4rev2/,
  IMAP4rev1: /'\* \d+ RECENT'/,
  'LITERAL+': /\+\}\\r\\n/,
  'LITERAL-': /LOGIN \{\d+\+\}/,
  'SASL-IR': /AUTHENTICATE PLAIN \$\{/,
  ENABLE: /' ?\w+ ENABLE [A-Z]/,
  IDLE: /\w IDLE\\r\\n/,
  NAMESPACE: /\w NAMESPACE'/,
  UIDPLUS: /\[(APPENDUID|COPYUID) /,
  MOVE: /\w (UID )?MOVE /,
  UNSELECT: /\w UNSELECT'/,
  CHILDREN: /\\\\HasChildren/,
  'SPECIAL-USE': /LIST \(SPECIAL-USE\)/,
  'CREATE-SPECIAL-USE': /CREATE \w+ \(USE \(/,
  'LIST-EXTENDED': /LIST \(SUBSCRIBED/,
  'LIST-STATUS': /RETURN \(STATUS \(/,
  ESEARCH: /\* ESEARCH \(TAG/,
  ID: /\w ID \(/,
  BINARY: /BINARY\.PEEK\[/,
  'STATUS=SIZE': /STATUS \w+ \(SIZE/,
  'UTF8=ACCEPT': /ENABLE UTF8=ACCEPT/,
  'COMPRESS=DEFLATE': /COMPRESS DEFLATE/,
  QUOTA: /GETQUOTAROOT INBOX/,
  'QUOTA=RES-STORAGE': /`STORAGE \$\{/,
  'QUOTA=RES-MESSAGE': /MESSAGE \d+ \d+\)/,
  SORT: /\w SORT \(/,
  'SORT=DISPLAY': /SORT \(DISPLAYFROM\)/,
  ESORT: /SORT RETURN \(/,
  'THREAD=ORDEREDSUBJECT': /THREAD ORDEREDSUBJECT/,
  'THREAD=REFERENCES': /THREAD REFERENCES/,
  WITHIN: /SEARCH (YOUNGER|OLDER) \d/,
  SEARCHRES: /RETURN \(SAVE\)/,
  CONDSTORE: /SELECT INBOX \(CONDSTORE\)/,
  QRESYNC: /\(QRESYNC \(\$\{/,
  PREVIEW: /FETCH \d+ PREVIEW/,
  OBJECTID: /EMAILID THREADID/,
  ACL: /\w SETACL /,
  'RIGHTS=texk': /lrxted/,
  APPENDLIMIT: /STATUS INBOX \(APPENDLIMIT\)/,
  'AUTH=PLAIN': /AUTHENTICATE PLAIN/,
  'AUTH=LOGIN': /AUTHENTICATE LOGIN/,
  STARTTLS: /\w STARTTLS'/,
  LOGINDISABLED: /allowPlaintext: false/,
};

function advertised(): string[] {
  const names = new Set<string>();
  for (const state of ['notAuthenticated', 'authenticated'] as const) {
    for (const [starttls, allowPlaintext] of [
      [true, false],
      [false, true],
    ] as const) {
      for (const cap of capabilityList({ state, tls: false, starttls, allowPlaintext, appendLimit: 1 })) {
        names.add(cap.startsWith('APPENDLIMIT=') ? 'APPENDLIMIT' : cap);
      }
    }
  }
  return [...names];
}

describe('in-process suite coverage', () => {
  it('finds the test files', () => {
    expect(SOURCES.length).toBeGreaterThan(20);
  });

  it.each(Object.keys(COMMANDS))('%s is sent by a command test', (name) => {
    expect(sentBy(name), `no file in test/commands sends ${name}`).not.toEqual([]);
  });

  it.each(advertised())('capability %s is exercised by a command test', (capability) => {
    const pattern = EXERCISED_BY[capability];
    expect(pattern, `add ${capability} to EXERCISED_BY with what its test sends`).toBeDefined();
    const files = SOURCES.filter((s) => pattern!.test(s.text)).map((s) => s.file);
    expect(files, `no file in test/commands exercises ${capability} (${String(pattern)})`).not.toEqual([]);
  });
});
