// Splits `helm template` output into Kubernetes objects, remembering which template made each.
import { parseAllDocuments } from 'yaml';

export interface ObjectMeta {
  readonly name?: string;
  readonly namespace?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** A rendered Kubernetes object; fields beyond the type meta are read defensively. */
export interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata?: ObjectMeta;
  readonly [field: string]: unknown;
}

export interface RenderedObject {
  /** Template path from helm's `# Source:` comment, e.g. postmesh/templates/deployments.yaml. */
  readonly source: string;
  readonly object: K8sObject;
}

export class ManifestParseError extends Error {
  override readonly name = 'ManifestParseError';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function parseManifests(text: string): RenderedObject[] {
  const out: RenderedObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) {
      throw new ManifestParseError(doc.errors.map((e) => e.message).join('; '));
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    const source = /Source:\s*(\S+)/.exec(doc.commentBefore ?? '')?.[1] ?? '<unknown>';
    if (!isRecord(value) || typeof value.apiVersion !== 'string' || typeof value.kind !== 'string') {
      throw new ManifestParseError(`${source}: a document without apiVersion and kind`);
    }
    out.push({ source, object: value as K8sObject });
  }
  return out;
}

/** "Kind/name", how reports name an object. */
export function objectRef(object: K8sObject): string {
  return `${object.kind}/${object.metadata?.name ?? '<unnamed>'}`;
}
