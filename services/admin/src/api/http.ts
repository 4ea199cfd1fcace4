/** The parts of Fastify's request and reply the API uses (kept narrow on purpose). */
import type { RequestAuth } from '../auth/principal.js';

export interface HttpRequest {
  readonly method: string;
  readonly url: string;
  readonly ip: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly params: Readonly<Record<string, string>>;
  readonly query: unknown;
  readonly body: unknown;
  pm?: RequestAuth;
}

export interface HttpReply {
  header(name: string, value: string): unknown;
  status(code: number): unknown;
}

export function headerOf(request: HttpRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function authOf(request: HttpRequest): RequestAuth {
  if (request.pm === undefined) throw new Error('request reached a handler without the guard');
  return request.pm;
}
