/**
 * Small waits and reads integration tests share: polling a condition with a deadline, and one
 * sample of a service's Prometheus `/metrics`.
 */

/** Polls `probe` every 200 ms until it answers a value (errors count as no answer yet). */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * The value of the `/metrics` sample of `name` on the ops port whose labels include `labels`
 * (an unlabelled sample when `labels` is empty); 0 when there is none.
 */
export async function metricValue(
  opsPort: number,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) && wanted.length === 0) return Number(line.slice(name.length + 1));
    if (!line.startsWith(`${name}{`)) continue;
    const end = line.lastIndexOf('} ');
    const own = line.slice(name.length + 1, end).split(',');
    if (wanted.every((pair) => own.includes(pair))) return Number(line.slice(end + 2));
  }
  return 0;
}
