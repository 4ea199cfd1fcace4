#!/usr/bin/env node
/**
 * IMAP side by side: the same workload against Postmesh's imap service and another IMAP server
 * (Dovecot from ../shared/peers), in one run, so the figures can be compared as a ratio on the
 * same machine at the same load. Both servers are filled the same way, by APPEND.
 *
 *   node tools/bench/imap-peer/dist/main.js \
 *     --target 'postmesh,127.0.0.1:1143,bench{i}@example.test,PASSWORD' \
 *     --target 'dovecot,127.0.0.1:10143,testuser{i},pass' --messages 10000 --clients 10
 *
 * Phases, each per target (the targets take turns, never overlap):
 *   fill    APPEND until user 1's INBOX holds --messages and users 2..U hold --stress-messages
 *           (what is already there counts, so a second run does not refill);
 *   mix     C logged-in clients on user 1's INBOX for D seconds: SELECT, FETCH 1:* (FLAGS
 *           ENVELOPE), FETCH n BODY.PEEK[], STORE ±FLAGS, SEARCH (the weights of tools/bench/imap);
 *   stress  S clients over U users for T seconds, each session logging in, selecting, then a random
 *           run of header, body and flag fetches, flag stores, EXPUNGE, APPEND and NOOP, and logging
 *           out (churn); then the same with long-lived sessions (no logout);
 *   only …  with --per-command-seconds P: each stress command alone over long-lived sessions for P
 *           seconds, so the CPU per command of each can be compared.
 * Reports commands/s, p50/p99 per command, and every refused command (NO/BAD) or dropped
 * connection with samples; then the ratio first target / second target.
 *
 * Options: --target NAME,HOST:PORT,USER-PATTERN,PASSWORD (repeatable; {i} in the user is 1..U),
 * --users U (5), --messages N (10000), --stress-messages M (200), --size BYTES (4096), --clients C
 * (10), --seconds D (30; 0 skips the mix), --stress-clients S (10), --stress-seconds T (20; 0 skips
 * stress), --per-command-seconds P (0: skipped), --fill-connections F (4), --seed K (1), --json, --cpu NAME=PID (repeatable: the CPU
 * time of that process tree during each phase, per process, in ms per command; see cpu.ts),
 * --profile TARGET=PID (repeatable: SIGUSR2 to PID before and after each phase of TARGET, for
 * bin/cpu-profile-on-signal.mjs). Every connection goes to the addresses
 * given (127.0.0.1 in our runs); every loop is bounded by a deadline.
 */
import { parseArgs } from 'node:util';
import { ConnectionLost, ImapClient, type Reply } from './client.js';
import { cpuDelta, cpuOfTree } from './cpu.js';

const { values: opts } = parseArgs({
  options: {
    target: { type: 'string', multiple: true, default: [] },
    users: { type: 'string', default: '5' },
    messages: { type: 'string', default: '10000' },
    'stress-messages': { type: 'string', default: '200' },
    size: { type: 'string', default: '4096' },
    clients: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '30' },
    'stress-clients': { type: 'string', default: '10' },
    'stress-seconds': { type: 'string', default: '20' },
    'per-command-seconds': { type: 'string', default: '0' },
    'fill-connections': { type: 'string', default: '4' },
    cpu: { type: 'string', multiple: true, default: [] },
    profile: { type: 'string', multiple: true, default: [] },
    seed: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  },
});

const log = (line: string): void => {
  process.stderr.write(`bench-imap-peer | ${line}\n`);
};

interface Target {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly user: (i: number) => string;
  readonly password: string;
}

function parseTarget(spec: string): Target {
  const [name, address, user, ...password] = spec.split(',');
  const [host, port] = (address ?? '').split(':');
  if (!name || !host || !port || !user || password.length === 0)
    throw new Error(`--target ${spec}: expected NAME,HOST:PORT,USER-PATTERN,PASSWORD`);
  return {
    name,
    host,
    port: Number(port),
    user: (i) => user.replaceAll('{i}', String(i)),
    password: password.join(','),
  };
}

const num = (name: keyof typeof opts): number => {
  const value = Number(opts[name]);
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} needs a number`);
  return value;
};
const USERS = num('users');
const MESSAGES = num('messages');
const STRESS_MESSAGES = num('stress-messages');
const SIZE = num('size');
const CLIENTS = num('clients');
const SECONDS = num('seconds');
const STRESS_CLIENTS = num('stress-clients');
const STRESS_SECONDS = num('stress-seconds');
const PER_COMMAND_SECONDS = num('per-command-seconds');
const FILL_CONNECTIONS = Math.max(1, num('fill-connections'));
const SEED = num('seed');

/** A small seeded PRNG (mulberry32), so both servers get the same sequence of choices. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Message k: RFC 5322 headers that SEARCH FROM and the header fetches can find, body to SIZE. */
function message(k: number): Buffer {
  const head =
    `From: Sender ${k % 50} <sender${k % 50}@example.net>\r\n` +
    `To: bench@example.test\r\n` +
    `Subject: bench message ${k}\r\n` +
    `Date: ${new Date(Date.UTC(2026, 0, 1) + k * 60_000).toUTCString().replace('GMT', '+0000')}\r\n` +
    `Message-ID: <bench-${k}-${SEED}@example.net>\r\n` +
    `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n`;
  const line = `line of message ${k}: the quick brown fox jumps over the lazy dog 0123456789\r\n`;
  const lines = Math.max(1, Math.ceil((SIZE - head.length) / line.length));
  return Buffer.from(head + line.repeat(lines), 'latin1');
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round = (value: number): number => Number(value.toFixed(1));

/** Latencies and failures per command name over one phase. */
class Tally {
  readonly #latencies = new Map<string, number[]>();
  readonly failures: { op: string; reason: string }[] = [];
  readonly #started = Date.now();

  ok(op: string, ms: number): void {
    let list = this.#latencies.get(op);
    if (list === undefined) this.#latencies.set(op, (list = []));
    list.push(ms);
  }

  fail(op: string, reason: string): void {
    this.failures.push({ op, reason });
  }

  /** Runs one command, timing it; NO/BAD and lost connections are failures (the caller decides). */
  async run(op: string, send: () => Promise<Reply>): Promise<Reply | null> {
    try {
      const reply = await send();
      if (reply.status === 'OK') this.ok(op, reply.ms);
      else this.fail(op, reply.text);
      return reply;
    } catch (error) {
      this.fail(op, error instanceof Error ? error.message : String(error));
      if (error instanceof ConnectionLost) throw error;
      return null;
    }
  }

  summary(): Record<string, unknown> {
    const seconds = (Date.now() - this.#started) / 1000;
    const all = [...this.#latencies.values()].flat().sort((a, b) => a - b);
    const perCommand = Object.fromEntries(
      [...this.#latencies.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([op, list]) => {
          const sorted = list.sort((a, b) => a - b);
          return [
            op,
            {
              count: sorted.length,
              p50Ms: round(percentile(sorted, 50)),
              p99Ms: round(percentile(sorted, 99)),
            },
          ];
        }),
    );
    const samples = [...new Set(this.failures.map((f) => `${f.op}: ${f.reason}`))].slice(0, 5);
    return {
      seconds: round(seconds),
      commands: all.length,
      commandsPerSecond: round(all.length / seconds),
      p50Ms: round(percentile(all, 50)),
      p99Ms: round(percentile(all, 99)),
      failed: this.failures.length,
      failureSamples: samples,
      perCommand,
    };
  }
}

async function login(target: Target, user: number): Promise<ImapClient> {
  const client = await ImapClient.open(target.host, target.port);
  const quoted = (s: string): string => `"${s.replace(/["\\]/g, '\\$&')}"`;
  const reply = await client.command(`LOGIN ${quoted(target.user(user))} ${quoted(target.password)}`);
  if (reply.status !== 'OK')
    throw new Error(`${target.name}: LOGIN ${target.user(user)} refused: ${reply.text}`);
  return client;
}

async function fill(target: Target): Promise<void> {
  for (let user = 1; user <= USERS; user++) {
    const want = user === 1 ? MESSAGES : STRESS_MESSAGES;
    const probe = await login(target, user);
    // A server that just started may not serve the mailbox yet (Postmesh's storage waits for a
    // lease its previous run held): wait, bounded, rather than measure the start-up.
    const ready = Date.now() + 180_000;
    for (;;) {
      const selected = await probe.command('SELECT INBOX');
      if (selected.status === 'OK') break;
      if (Date.now() > ready) throw new Error(`${target.name}: SELECT INBOX refused: ${selected.text}`);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
    const have = probe.exists;
    await probe.command('LOGOUT').catch(() => undefined);
    probe.close();
    if (have >= want) {
      log(`${target.name}: ${target.user(user)} INBOX already holds ${have} messages`);
      continue;
    }
    const started = Date.now();
    let next = have;
    let done = have;
    let lastLog = Date.now();
    await Promise.all(
      Array.from({ length: FILL_CONNECTIONS }, async () => {
        const c = await login(target, user);
        try {
          while (next < want) {
            const k = next++;
            const reply = await c.append('INBOX', message(k), k % 3 === 0 ? '\\Seen' : '');
            if (reply.status !== 'OK') throw new Error(`${target.name}: APPEND refused: ${reply.text}`);
            done++;
            if (Date.now() - lastLog > 10_000) {
              lastLog = Date.now();
              log(`${target.name}: filling ${target.user(user)}: ${done}/${want}`);
            }
          }
          await c.command('LOGOUT').catch(() => undefined);
        } finally {
          c.close();
        }
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    log(
      `${target.name}: ${target.user(user)} filled to ${want} (${want - have} APPENDs in ${seconds.toFixed(1)} s, ` +
        `${((want - have) / seconds).toFixed(0)}/s)`,
    );
  }
}

const MIX_OPS = ['SELECT', 'FETCH 1:* (FLAGS ENVELOPE)', 'FETCH n BODY[]', 'STORE', 'SEARCH'] as const;
type MixOp = (typeof MIX_OPS)[number];
/** The weights of tools/bench/imap, so the two benchmarks describe the same mix. */
const MIX_WEIGHTS: Record<MixOp, number> = {
  SELECT: 1,
  'FETCH 1:* (FLAGS ENVELOPE)': 1,
  'FETCH n BODY[]': 10,
  STORE: 10,
  SEARCH: 3,
};

async function mix(target: Target): Promise<Record<string, unknown>> {
  const table = MIX_OPS.flatMap((op) => Array<MixOp>(MIX_WEIGHTS[op]).fill(op));
  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      const c = await login(target, 1);
      await c.command('SELECT INBOX');
      return c;
    }),
  );
  const tally = new Tally();
  const deadline = Date.now() + SECONDS * 1000;
  await Promise.all(
    clients.map(async (c, client) => {
      let k = client;
      try {
        while (Date.now() < deadline) {
          const op = table[(k * 7919 + client) % table.length]!;
          const n = 1 + ((k * 104729) % Math.max(1, c.exists));
          k++;
          await tally.run(op, () => {
            switch (op) {
              case 'SELECT':
                return c.command('SELECT INBOX');
              case 'FETCH 1:* (FLAGS ENVELOPE)':
                return c.command('FETCH 1:* (FLAGS ENVELOPE)');
              case 'FETCH n BODY[]':
                return c.command(`FETCH ${n} BODY.PEEK[]`);
              case 'STORE':
                return c.command(`STORE ${n} ${k % 2 === 0 ? '+' : '-'}FLAGS.SILENT (\\Flagged)`);
              case 'SEARCH':
                return c.command(k % 2 === 0 ? 'SEARCH UNSEEN' : `SEARCH FROM sender${k % 50}@`);
            }
          });
        }
        await c.command('LOGOUT').catch(() => undefined);
      } catch {
        // a lost connection is already counted as a failure; this client stops
      } finally {
        c.close();
      }
    }),
  );
  return tally.summary();
}

/**
 * The commands of a stress session, by the name they are reported under: what a busy desktop
 * client does between two syncs. `n()` is a random message number of the selected mailbox.
 */
const STEPS: Record<
  string,
  (c: ImapClient, n: () => number, random: () => number, k: number) => Promise<Reply>
> = {
  APPEND: (c, _n, _r, k) => c.append('INBOX', message(1_000_000 + k)),
  'FETCH headers': (c, n) => {
    const from = n();
    const to = Math.min(c.exists, from + 19);
    return c.command(
      `FETCH ${from}:${to} (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])`,
    );
  },
  'FETCH body': (c, n) => c.command(`FETCH ${n()} BODY.PEEK[]`),
  'FETCH flags': (c) => c.command('FETCH 1:* (FLAGS)'),
  STORE: (c, n, random) => {
    const flag = random() < 0.5 ? '+FLAGS (\\Seen)' : '-FLAGS (\\Seen)';
    return c.command(`STORE ${n()} ${flag}`);
  },
  'STORE \\Deleted': (c, n) => c.command(`STORE ${n()} +FLAGS.SILENT (\\Deleted)`),
  EXPUNGE: (c) => c.command('EXPUNGE'),
  NOOP: (c) => c.command('NOOP'),
};

/** The stress mix: each command's share of the steps (APPEND also when the mailbox is empty). */
const STRESS_MIX: readonly [string, number][] = [
  ['APPEND', 0.1],
  ['FETCH headers', 0.3],
  ['FETCH body', 0.5],
  ['FETCH flags', 0.6],
  ['STORE', 0.8],
  ['STORE \\Deleted', 0.88],
  ['EXPUNGE', 0.93],
  ['NOOP', 1],
];

/** One random step of a stress session. */
async function stressStep(c: ImapClient, tally: Tally, random: () => number, k: number): Promise<void> {
  const n = (): number => 1 + Math.floor(random() * c.exists);
  const roll = random();
  const name = c.exists === 0 ? 'APPEND' : (STRESS_MIX.find(([, upTo]) => roll < upTo)?.[0] ?? 'NOOP');
  await tally.run(name, () => STEPS[name]!(c, n, random, k));
}

/**
 * --per-command-seconds: the stress commands one kind at a time, each for that long, over
 * long-lived sessions (the stress clients over the users, logged in and selected once), so each
 * command's rate and CPU per command can be compared on its own. STORE \Deleted and EXPUNGE take
 * turns with an APPEND, which keeps the mailbox's size (it would otherwise empty within seconds);
 * an empty mailbox gets an APPEND first.
 */
const PER_COMMAND: readonly (readonly [string, readonly string[]])[] = [
  ['NOOP', ['NOOP']],
  ['FETCH flags', ['FETCH flags']],
  ['FETCH headers', ['FETCH headers']],
  ['FETCH body', ['FETCH body']],
  ['STORE', ['STORE']],
  ['STORE \\Deleted + EXPUNGE + APPEND', ['STORE \\Deleted', 'EXPUNGE', 'APPEND']],
  ['APPEND', ['APPEND']],
];

async function perCommand(target: Target, names: readonly string[]): Promise<Record<string, unknown>> {
  const tally = new Tally();
  const deadline = Date.now() + PER_COMMAND_SECONDS * 1000;
  await Promise.all(
    Array.from({ length: STRESS_CLIENTS }, async (_, client) => {
      const random = prng(SEED * 1000 + client);
      let c: ImapClient | null = null;
      try {
        c = await login(target, 1 + (client % USERS));
        const session = c;
        await tally.run('SELECT', () => session.command('SELECT INBOX'));
        const n = (): number => 1 + Math.floor(random() * session.exists);
        for (let k = client * 100_000; Date.now() < deadline; k++) {
          const name = session.exists === 0 ? 'APPEND' : names[k % names.length]!;
          await tally.run(name, () => STEPS[name]!(session, n, random, k));
        }
        await session.command('LOGOUT').catch(() => undefined);
      } catch (error) {
        // a lost connection is already counted; a refused LOGIN is one too
        if (!(error instanceof ConnectionLost))
          tally.fail('LOGIN', error instanceof Error ? error.message : String(error));
      } finally {
        c?.close();
      }
    }),
  );
  return tally.summary();
}

async function stress(target: Target, churn: boolean): Promise<Record<string, unknown>> {
  const tally = new Tally();
  const deadline = Date.now() + STRESS_SECONDS * 1000;
  await Promise.all(
    Array.from({ length: STRESS_CLIENTS }, async (_, client) => {
      const random = prng(SEED * 1000 + client);
      const user = 1 + (client % USERS);
      let k = client * 100_000;
      while (Date.now() < deadline) {
        let c: ImapClient | null = null;
        try {
          const opened = performance.now();
          c = await ImapClient.open(target.host, target.port);
          const session = c;
          const loginReply = await tally.run('LOGIN', () =>
            session.command(`LOGIN "${target.user(user)}" "${target.password.replace(/["\\]/g, '\\$&')}"`),
          );
          if (loginReply?.status !== 'OK') break;
          tally.ok('connect', performance.now() - opened - loginReply.ms);
          await tally.run('SELECT', () => session.command('SELECT INBOX'));
          const steps = churn ? 3 + Math.floor(random() * 10) : Number.POSITIVE_INFINITY;
          for (let step = 0; step < steps && Date.now() < deadline; step++) {
            await stressStep(session, tally, random, k++);
          }
          if (churn) await tally.run('LOGOUT', () => session.command('LOGOUT'));
        } catch {
          // counted in the tally; open a new session
        } finally {
          c?.close();
        }
      }
    }),
  );
  return tally.summary();
}

/** --profile: toggles the sampling profiler of the target's processes around a phase. */
function profileSignal(target: Target): void {
  for (const spec of opts.profile ?? []) {
    const [name, pid] = spec.split('=');
    if (name !== target.name) continue;
    if (!pid || !/^\d+$/.test(pid)) throw new Error(`--profile ${spec}: expected TARGET=PID`);
    process.kill(Number(pid), 'SIGUSR2');
  }
}

/** The --cpu process trees: label → CPU ms so far. */
function cpuSnapshot(): Map<string, number> {
  const all = new Map<string, number>();
  for (const spec of opts.cpu ?? []) {
    const [name, pid] = spec.split('=');
    if (!name || !pid || !/^\d+$/.test(pid)) throw new Error(`--cpu ${spec}: expected NAME=PID`);
    for (const [label, ms] of cpuOfTree(name, Number(pid))) all.set(label, ms);
  }
  return all;
}

/** CPU ms per command of each process during a phase (what the other target used is ~0). */
function cpuPerCommand(spent: Record<string, number>, commands: number): Record<string, unknown> {
  const perProcess = Object.fromEntries(
    Object.entries(spent)
      .filter(([, ms]) => ms > 0)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([label, ms]) => [label, { ms, msPerCommand: commands === 0 ? null : round(ms / commands) }]),
  );
  const totals: Record<string, number> = {};
  for (const [label, ms] of Object.entries(spent)) {
    const tree = label.split(':')[0]!;
    totals[tree] = (totals[tree] ?? 0) + ms;
  }
  const perTree = Object.fromEntries(
    Object.entries(totals).map(([tree, ms]) => [
      tree,
      { ms, msPerCommand: commands === 0 ? null : Number((ms / commands).toFixed(2)) },
    ]),
  );
  return { perProcess, perTree };
}

function printPhase(name: string, target: string, result: Record<string, unknown>): void {
  log(
    `${target} ${name}: ${String(result.commandsPerSecond)} commands/s, p50 ${String(result.p50Ms)} ms, ` +
      `p99 ${String(result.p99Ms)} ms, ${String(result.failed)} failed`,
  );
  const per = result.perCommand as Record<string, { count: number; p50Ms: number; p99Ms: number }>;
  for (const [op, s] of Object.entries(per)) {
    log(`    ${op.padEnd(28)} n=${String(s.count).padStart(7)} p50 ${s.p50Ms} ms p99 ${s.p99Ms} ms`);
  }
  for (const sample of result.failureSamples as string[]) log(`    failure: ${sample}`);
  const cpu = result.cpu as
    { perProcess: Record<string, { ms: number; msPerCommand: number | null }> } | undefined;
  for (const [label, c] of Object.entries(cpu?.perProcess ?? {})) {
    if (c.ms >= 50) log(`    cpu ${label.padEnd(26)} ${c.ms} ms, ${String(c.msPerCommand)} ms/command`);
  }
}

async function main(): Promise<void> {
  const targets = (opts.target ?? []).map(parseTarget);
  if (targets.length === 0)
    throw new Error('give at least one --target NAME,HOST:PORT,USER-PATTERN,PASSWORD');
  const results: Record<string, Record<string, unknown>> = {};
  for (const target of targets) {
    await fill(target);
    results[target.name] = {};
  }
  const phases: [string, (t: Target) => Promise<Record<string, unknown>>, boolean][] = [
    ['mix', mix, SECONDS > 0],
    ['stress', (t) => stress(t, true), STRESS_SECONDS > 0],
    ['stress-no-logout', (t) => stress(t, false), STRESS_SECONDS > 0],
    ...PER_COMMAND.map(
      ([name, steps]): [string, (t: Target) => Promise<Record<string, unknown>>, boolean] => [
        `only ${name}`,
        (t) => perCommand(t, steps),
        PER_COMMAND_SECONDS > 0,
      ],
    ),
  ];
  for (const [phase, run, enabled] of phases) {
    if (!enabled) continue;
    for (const target of targets) {
      log(`${target.name}: ${phase}…`);
      const cpuBefore = cpuSnapshot();
      profileSignal(target);
      const result = await run(target);
      profileSignal(target);
      result.cpu = cpuPerCommand(cpuDelta(cpuBefore, cpuSnapshot()), result.commands as number);
      results[target.name]![phase] = result;
      printPhase(phase, target.name, result);
    }
  }
  const ratios: Record<string, number | null> = {};
  if (targets.length >= 2) {
    const [a, b] = [results[targets[0]!.name]!, results[targets[1]!.name]!];
    for (const [phase] of phases) {
      const x = (a[phase] as { commandsPerSecond?: number } | undefined)?.commandsPerSecond;
      const y = (b[phase] as { commandsPerSecond?: number } | undefined)?.commandsPerSecond;
      if (x === undefined || y === undefined) continue;
      ratios[phase] = y === 0 ? null : Number((x / y).toFixed(3));
      log(
        `${phase}: ${targets[0]!.name} ${x} / ${targets[1]!.name} ${y} commands/s = ${String(ratios[phase])}×`,
      );
      // With --cpu NAME=PID for both targets (NAME = the target's name): CPU per command, A / B.
      const cpuOf = (r: Record<string, unknown>, name: string): number | undefined =>
        (r[phase] as { cpu?: { perTree: Record<string, { msPerCommand: number | null }> } }).cpu?.perTree[
          name
        ]?.msPerCommand ?? undefined;
      const [cx, cy] = [cpuOf(a, targets[0]!.name), cpuOf(b, targets[1]!.name)];
      if (cx !== undefined && cy !== undefined && cy > 0) {
        ratios[`${phase} cpu per command`] = Number((cx / cy).toFixed(2));
        log(
          `${phase}: CPU per command ${targets[0]!.name} ${cx} ms / ${targets[1]!.name} ${cy} ms = ${(cx / cy).toFixed(2)}×`,
        );
      }
    }
  }
  const out = {
    settings: {
      users: USERS,
      messages: MESSAGES,
      stressMessages: STRESS_MESSAGES,
      size: SIZE,
      clients: CLIENTS,
      seconds: SECONDS,
      stressClients: STRESS_CLIENTS,
      stressSeconds: STRESS_SECONDS,
      perCommandSeconds: PER_COMMAND_SECONDS,
      seed: SEED,
    },
    results,
    ratios,
  };
  if (opts.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

main().catch((error: unknown) => {
  log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
});
