import { runService } from '@postmesh/runtime';
import { schema } from './config.js';

/**
 * smtp-inbound: receives mail (MX and submission) and answers 250 only once a message is
 * durably queued in JetStream (DESIGN §2). This wiring connects to NATS and reports ready; the
 * Haraka listeners and plugins are added by the inbound pipeline work.
 */
await runService({
  name: 'smtp-inbound',
  schema,
  start() {
    return Promise.resolve({ stop: () => Promise.resolve() });
  },
});
