import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure, fast, no servers) and `integration` (real nats-server, FerretDB,
// Haraka, clients). Integration files end in `.int.test.ts`; they start their own isolated
// servers through @postmesh/testing, so both projects can run in parallel.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{libs,services,tools}/*/test/**/*.test.ts'],
          exclude: ['**/*.int.test.ts', '**/node_modules/**'],
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
    ],
  },
});
