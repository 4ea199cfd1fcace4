/**
 * Runs Haraka inside this process (docs/adr/0004-haraka-integration.md): the plugins are our
 * compiled TypeScript and share this process's NATS connection, Directory client and logger.
 * Haraka reads `process.env.HARAKA` when its modules load, so the config dir is written and the
 * variable set before the first `require`.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Server as NetServer } from 'node:net';
import type { PostmeshPluginName } from './config-dir.js';
import { requireProxyHeader } from './proxy-front.js';
import type { PluginHooks } from './types.js';

const REGISTRY = Symbol.for('postmesh.smtp-inbound.plugins');

interface HarakaServerModule {
  listeners: NetServer[];
  createServer(params: Record<string, unknown>): void;
  stopListeners(): void;
}

export interface RunningHaraka {
  /** Addresses Haraka listens on. */
  readonly addresses: readonly { address: string; port: number }[];
  /** True while every listener is open. */
  listening(): boolean;
  /** Every connection must start with a PROXY header (v1 or v2); see proxy-front.ts. */
  requireProxyHeader(): void;
  /** Stop accepting connections; sessions already open carry on. */
  closeListeners(): void;
}

let started = false;

export async function startHaraka(
  root: string,
  plugins: Readonly<Record<PostmeshPluginName, PluginHooks>>,
  timeoutMs = 15_000,
): Promise<RunningHaraka> {
  // Haraka keeps module-level state (config, plugin registry): one instance per process.
  if (started) throw new Error('Haraka is already running in this process');
  started = true;
  process.env.HARAKA = root;
  (process as unknown as Record<symbol, unknown>)[REGISTRY] = plugins;
  const require = createRequire(import.meta.url);
  const server = require('Haraka/server.js') as HarakaServerModule;
  server.createServer({});
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const bound = server.listeners.filter((l) => l.listening);
    if (bound.length >= expectedListeners(root) && bound.length === server.listeners.length) break;
    if (Date.now() > deadline) throw new Error(`Haraka did not listen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const addresses = server.listeners.map((l) => {
    const a = l.address();
    return typeof a === 'object' && a !== null
      ? { address: a.address, port: a.port }
      : { address: '', port: 0 };
  });
  let closed = false;
  return {
    addresses,
    listening: () => !closed && server.listeners.every((l) => l.listening),
    requireProxyHeader() {
      for (const listener of server.listeners) requireProxyHeader(listener);
    },
    closeListeners() {
      closed = true;
      server.stopListeners();
    },
  };
}

/**
 * Haraka opens its listeners one after another (one per `listen` address in smtp.ini): wait for
 * all of them, or the ones opened last would miss what is set up on them after start.
 */
function expectedListeners(root: string): number {
  const ini = readFileSync(join(root, 'config', 'smtp.ini'), 'utf8');
  const listen = /^listen=(.*)$/m.exec(ini)?.[1] ?? '';
  return Math.max(1, listen.split(',').filter((a) => a.trim() !== '').length);
}
