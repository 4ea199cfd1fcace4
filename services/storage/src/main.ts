import { runService } from '@postmesh/runtime';
import { storageService } from './service.js';

await runService(storageService);
