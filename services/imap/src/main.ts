import { runService } from '@postmesh/runtime';
import { imapService } from './service.js';

await runService(imapService);
