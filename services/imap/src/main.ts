import { runService } from '@postmesh/runtime';
import { schema } from './config.js';

/**
 * imap: the IMAP4rev2/IMAP4rev1 server (DESIGN §1). This wiring connects to NATS and reports
 * ready; the listeners and the protocol session are added by the IMAP work.
 */
await runService({
  name: 'imap',
  schema,
  start() {
    return Promise.resolve({ stop: () => Promise.resolve() });
  },
});
