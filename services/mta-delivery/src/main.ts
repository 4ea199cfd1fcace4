import { runService } from '@postmesh/runtime';
import { schema } from './config.js';

/**
 * mta-delivery: sends queued mail out (DESIGN §2 steps 9-10). This wiring connects to NATS and
 * reports ready; the MAIL_OUTBOUND consumer is added by the outbound work.
 */
await runService({
  name: 'mta-delivery',
  schema,
  start() {
    return Promise.resolve({ stop: () => Promise.resolve() });
  },
});
