/** The admin REST API over fetch with a bearer token (no cookies, so no CSRF token needed). */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Page<T> {
  readonly items: T[];
  readonly nextPageToken: string;
}

export class AdminClient {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
  ) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl.replace(/\/$/, '')}/api/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(60_000),
      });
    } catch (error) {
      throw new ApiError(
        0,
        'unreachable',
        `cannot reach ${this.baseUrl}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    const raw = await response.text();
    let parsed: unknown;
    try {
      parsed = raw === '' ? {} : JSON.parse(raw);
    } catch {
      throw new ApiError(
        response.status,
        'bad_response',
        `unexpected answer from the server (HTTP ${response.status})`,
      );
    }
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string; message?: string } }).error;
      throw new ApiError(
        response.status,
        error?.code ?? 'error',
        error?.message ?? `HTTP ${response.status}`,
      );
    }
    return parsed as T;
  }

  /** Every page of a list (bounded), or just the first. */
  async list<T>(path: string, query: Record<string, string | undefined>, all: boolean): Promise<T[]> {
    const items: T[] = [];
    let token = '';
    for (let pages = 0; pages < 1000; pages++) {
      const params = new URLSearchParams(
        Object.entries({ ...query, pageToken: token || undefined }).filter(
          (e): e is [string, string] => e[1] !== undefined && e[1] !== '',
        ),
      ).toString();
      const page = await this.request<Page<T>>('GET', `${path}${params === '' ? '' : `?${params}`}`);
      items.push(...page.items);
      if (!all || page.nextPageToken === '') break;
      token = page.nextPageToken;
    }
    return items;
  }
}
