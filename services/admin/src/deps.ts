import type { Logger } from '@postmesh/telemetry';
import type { AuditLog } from './audit.js';
import type { AuthThrottle } from '@postmesh/bus';
import type { QueueInspector } from './ops/queue.js';
import type { QueueOps } from './ops/queue-operations-client.js';
import type { HealthProbe } from './ops/health.js';
import type { StorageClient } from '@postmesh/storage-client';

/** Injection token of AdminDeps (Nest cannot inject an interface by type). */
export const DEPS = Symbol('postmesh-admin-deps');

export interface AdminSettings {
  readonly cookieSecure: boolean;
  readonly sessionIdleSeconds: number;
  readonly sessionAbsoluteSeconds: number;
  /** Hostname that receives mail for hosted domains (the DNS wizard's MX target). */
  readonly mailHost: string;
  /** DNS servers for the live record check; empty means the system's. */
  readonly dnsServers: readonly string[];
  /** `host:port` pairs whose TLS certificate the overview checks (default: the mail host's 993 and 465). */
  readonly tlsCheckTargets?: readonly string[];
  /** POSTMESH_TRACE_URL_TEMPLATE: where a trace id links to (`{traceId}` replaced). */
  readonly traceUrlTemplate?: string;
}

/** Everything the controllers and the guard use; built once in app.ts. */
export interface AdminDeps {
  readonly settings: AdminSettings;
  readonly storage: StorageClient;
  readonly audit: AuditLog;
  readonly logger: Logger;
  /** Sign-in throttle per client IP and per account (libs/bus, shared with imap and smtp-inbound). */
  readonly throttle: AuthThrottle;
  readonly queue: QueueInspector | undefined;
  /** mta-delivery's queue operations (core NATS request/reply); undefined without NATS. */
  readonly queueOps: QueueOps | undefined;
  readonly health: HealthProbe;
}
