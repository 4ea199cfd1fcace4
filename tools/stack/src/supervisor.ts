import { readFileSync } from 'node:fs';
import type { ManagedProcess } from '@postmesh/testing';

export interface SupervisedOptions {
  readonly name: string;
  readonly process: ManagedProcess;
  /** Start (or restart) the process and resolve once it is up. */
  readonly start: () => Promise<void>;
  readonly log: (line: string) => void;
}

/** Restart delays after an unexpected exit: 1 s, 2 s, 4 s … capped at 30 s. */
const backoff = (attempt: number): number => Math.min(30_000, 1_000 * 2 ** Math.max(0, attempt - 1));
/** This many unexpected exits within CRASH_WINDOW_MS is a crash loop, reported as such. */
const CRASH_LOOP_EXITS = 5;
const CRASH_WINDOW_MS = 60_000;

/**
 * Keeps one process running. An unexpected exit is logged with its code and the last lines of the
 * process's log, then the process is restarted with exponential backoff; repeated exits are
 * reported as a crash loop rather than retried silently.
 */
export class Supervised {
  private stopping = false;
  private exits: number[] = [];
  private restartTimer: NodeJS.Timeout | undefined;
  restarts = 0;

  constructor(private readonly options: SupervisedOptions) {}

  async start(): Promise<void> {
    await this.options.start();
    this.watch();
  }

  private watch(): void {
    void this.options.process.exited.then((code) => {
      if (this.stopping) return;
      const now = Date.now();
      this.exits = [...this.exits.filter((t) => now - t < CRASH_WINDOW_MS), now];
      const attempt = this.exits.length;
      const delay = backoff(attempt);
      const tail = lastLines(this.options.process.options.logFile, 5);
      this.options.log(
        `${this.options.name} exited unexpectedly (${code === null ? 'killed by a signal' : `exit code ${code}`}); ` +
          `restarting in ${delay / 1000} s. Last log lines:\n${tail.map((l) => `    ${l}`).join('\n')}`,
      );
      if (attempt >= CRASH_LOOP_EXITS) {
        this.options.log(
          `${this.options.name} is in a crash loop (${attempt} exits in ${CRASH_WINDOW_MS / 1000} s); ` +
            `see ${this.options.process.options.logFile}`,
        );
      }
      this.restartTimer = setTimeout(() => {
        this.restarts += 1;
        this.options
          .start()
          .then(() => {
            this.options.log(`${this.options.name} restarted`);
            this.watch();
          })
          .catch((error: unknown) => {
            this.options.log(
              `${this.options.name} failed to restart: ${error instanceof Error ? error.message : String(error)}`,
            );
            this.watch();
          });
      }, delay);
    });
  }

  /** From now on an exit is expected: do not restart. */
  markStopping(): void {
    this.stopping = true;
    clearTimeout(this.restartTimer);
  }

  async stop(): Promise<void> {
    this.markStopping();
    clearTimeout(this.restartTimer);
    await this.options.process.stop(15_000);
  }
}

function lastLines(file: string, count: number): string[] {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-count);
  } catch {
    return ['(no log)'];
  }
}
