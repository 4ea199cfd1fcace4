import { runService } from '@postmesh/runtime';
import { imapProxyService } from './service.js';

await runService(imapProxyService);
