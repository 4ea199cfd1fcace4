/** The console's only way to the server: the same REST API as the CLI, with the CSRF token. */
export interface ApiErrorBody {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly field?: string;
}

export class ApiFailure extends Error {
  override readonly name = 'ApiFailure';
  constructor(readonly error: ApiErrorBody) {
    super(error.message);
  }
}

export interface Page<T> {
  readonly items: T[];
  readonly nextPageToken: string;
}

export interface Me {
  readonly kind: 'admin' | 'user';
  readonly role: string;
  readonly admin?: { readonly id: string; readonly email: string; readonly totpEnabled?: boolean };
  readonly user?: { readonly id: string; readonly address: string };
  readonly domains: string[];
  readonly permissions: string[];
  readonly csrfToken?: string;
}

/** Dispatched on window when the API answers 401 to a signed-in request. */
export const SESSION_ENDED = 'postmesh:session-ended';

let csrfToken = '';
export const setCsrf = (token: string | undefined): void => {
  csrfToken = token ?? '';
};

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrfToken;
  let response: Response;
  try {
    response = await fetch(`/api${path}`, {
      method,
      headers,
      credentials: 'same-origin',
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch {
    throw new ApiFailure({
      status: 0,
      code: 'network',
      message: 'The server cannot be reached. Check your connection.',
    });
  }
  const text = await response.text();
  // The session ended (idle or absolute timeout, signed out elsewhere, password changed): the app
  // returns to the sign-in form instead of showing errors on every screen.
  if (response.status === 401 && path !== '/v1/auth/login' && path !== '/v1/me')
    window.dispatchEvent(new Event(SESSION_ENDED));
  const parsed: unknown = text === '' ? {} : JSON.parse(text);
  if (!response.ok) {
    const error = (parsed as { error?: ApiErrorBody }).error;
    throw new ApiFailure(
      error ?? { status: response.status, code: 'unknown', message: `Request failed (${response.status})` },
    );
  }
  return parsed as T;
}

export const qs = (params: Record<string, string | number | undefined>): string => {
  const entries = Object.entries(params).filter(
    (e): e is [string, string | number] => e[1] !== undefined && e[1] !== '',
  );
  return entries.length === 0
    ? ''
    : `?${new URLSearchParams(entries.map(([k, v]) => [k, String(v)])).toString()}`;
};
