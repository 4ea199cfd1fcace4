import { defineConfig } from 'vitest/config';

// Four projects: `unit` (pure, fast, no servers), `imap-commands` (the in-process IMAP suite,
// no servers either) and `integration` (real nats-server, FerretDB, Haraka, clients). Integration
// files end in `.int.test.ts`; they start their own isolated servers through @postmesh/testing,
// so the projects can run in parallel. `storage-sqlite` reruns storage's core suites on SQLite.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{libs,services,tools}/*/test/**/*.test.ts'],
          exclude: ['**/*.int.test.ts', '**/node_modules/**', 'services/imap/test/commands/**'],
          testTimeout: 20_000,
        },
      },
      {
        // The in-process IMAP command suite: some 30 small files over the same server modules.
        // One module graph per worker instead of one per file makes the suite about six times
        // cheaper; its tests keep no state between them (each builds its own InprocImap).
        test: {
          name: 'imap-commands',
          include: ['services/imap/test/commands/**/*.test.ts'],
          isolate: false,
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['{libs,services,tools,charts}/**/test/**/*.int.test.ts'],
          exclude: ['**/node_modules/**'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // Each suite starts its own servers, so files run in parallel -- except against an
          // external NATS or MongoDB (NATS_URL / MONGODB_URI), where stream names are shared.
          fileParallelism: !process.env.NATS_URL && !process.env.MONGODB_URI,
        },
      },
      {
        // Storage's core suites again on the in-process SQLite database (ADR 0011, npm start's
        // default) instead of FerretDB: the harness opens a SQLite file when POSTMESH_TEST_DB is
        // sqlite. (Suites that read FerretDB directly, patch the driver's classes or start storage
        // in a child process with MONGODB_URI test the harness there, and stay on FerretDB only.)
        test: {
          name: 'storage-sqlite',
          include: [
            'services/storage/test/mailstore-{messages,mailboxes,storage,index,read-path}.int.test.ts',
            'services/storage/test/{delivery,directory,directory-cache,credential-cache,admin,trace}.int.test.ts',
          ],
          env: { POSTMESH_TEST_DB: 'sqlite' },
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: !process.env.NATS_URL && !process.env.MONGODB_URI,
        },
      },
    ],
  },
});
