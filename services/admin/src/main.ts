import { runService } from '@postmesh/runtime';
import { schema } from './config.js';

/**
 * admin: the admin API and web console (DESIGN §1, §6). This wiring connects to NATS and
 * reports ready; the HTTP API and console are added by the admin work.
 */
await runService({
  name: 'admin',
  schema,
  start() {
    return Promise.resolve({ stop: () => Promise.resolve() });
  },
});
