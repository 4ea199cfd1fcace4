/**
 * Writes the audit log (DESIGN §5, §6): every change and every denied attempt, with actor,
 * action, target, time (set by storage), source IP and result. A failed write is logged loudly
 * but does not fail the request that was already carried out.
 */
import { admin } from '@postmesh/contracts';
import type { Logger } from '@postmesh/telemetry';
import type { Principal } from './auth/principal.js';
import { actorOf } from './auth/principal.js';
import type { StorageClient } from '@postmesh/storage-client';

export type AuditOutcome = 'success' | 'denied' | 'failed';

export interface AuditRecord {
  readonly principal: Principal | undefined;
  readonly action: string;
  readonly target: string;
  readonly domain: string;
  readonly sourceIp: string;
  readonly outcome: AuditOutcome;
  readonly detail: string;
  readonly requestId: string;
}

const RESULT = {
  success: admin.AuditResult.SUCCESS,
  denied: admin.AuditResult.DENIED,
  failed: admin.AuditResult.FAILED,
} as const;

export class AuditLog {
  constructor(
    private readonly storage: StorageClient,
    private readonly logger: Logger,
  ) {}

  async write(record: AuditRecord): Promise<void> {
    const entry: admin.AuditEntry = {
      id: '',
      ...actorOf(record.principal),
      action: record.action,
      target: record.target,
      domain: record.domain,
      sourceIp: record.sourceIp,
      result: RESULT[record.outcome],
      detail: record.detail,
      requestId: record.requestId,
    };
    try {
      await this.storage.admin.appendAudit({ entry });
    } catch (error) {
      this.logger.error({ err: error, audit: entry }, 'could not write the audit log entry');
    }
  }
}
