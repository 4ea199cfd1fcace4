/** System health: each service's `/healthz/ready` on its ops port, and stream lag (DESIGN §1). */
import type { QueueInspector } from './queue.js';

export interface ServiceHealth {
  readonly service: string;
  readonly url: string;
  readonly ready: boolean;
  readonly status: number;
  readonly detail: string;
}

export class HealthProbe {
  constructor(
    /** service name → ops base URL (`http://127.0.0.1:9102`). */
    private readonly targets: ReadonlyMap<string, string>,
    private readonly queue: QueueInspector | undefined,
  ) {}

  async services(): Promise<ServiceHealth[]> {
    return Promise.all(
      [...this.targets].map(async ([service, base]) => {
        const url = `${base.replace(/\/$/, '')}/healthz/ready`;
        try {
          const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
          const text = (await response.text()).slice(0, 500);
          return { service, url, ready: response.status === 200, status: response.status, detail: text };
        } catch (error) {
          return {
            service,
            url,
            ready: false,
            status: 0,
            detail: error instanceof Error ? error.message : 'unreachable',
          };
        }
      }),
    );
  }

  async report(): Promise<{
    services: ServiceHealth[];
    streams: Awaited<ReturnType<QueueInspector['streams']>>;
  }> {
    const [services, streams] = await Promise.all([
      this.services(),
      this.queue?.streams() ?? Promise.resolve([]),
    ]);
    return { services, streams };
  }
}

/** `storage=http://127.0.0.1:9102,imap=…` → map. */
export function parseHealthTargets(raw: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of raw.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}
