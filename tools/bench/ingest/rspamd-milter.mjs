#!/usr/bin/env node
// rspamd for the peers' side of the content-filter benchmark: the same offline configuration
// Postmesh's stack runs (libs/testing RspamdServer, Debian's rules, network checks off), plus the
// proxy worker as a milter on MILTER_PORT for Postfix (`smtpd_milters`). Prints one JSON line
// with its process ids once it answers, and runs until SIGTERM or SIGINT.
//
//   node tools/bench/ingest/rspamd-milter.mjs MILTER_PORT
import { RspamdServer, waitForPort } from '@postmesh/testing';

const milterPort = Number(process.argv[2]);
if (!Number.isInteger(milterPort) || milterPort <= 0) {
  process.stderr.write('usage: rspamd-milter.mjs MILTER_PORT\n');
  process.exit(2);
}
const server = await RspamdServer.start({ milterPort });
await waitForPort(milterPort, '127.0.0.1', 600_000, () => server.process.running);
process.stdout.write(
  `${JSON.stringify({ milterPort, url: server.url, controllerUrl: server.controllerUrl, pids: { rspamd: server.process.pid, redis: server.redis.pid } })}\n`,
);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.stop();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
