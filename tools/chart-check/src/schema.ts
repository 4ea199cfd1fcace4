// Validates rendered objects against the Kubernetes API schemas (OpenAPI, as shipped by the
// kubernetes-models packages) and the CRD schemas of KEDA, the Prometheus Operator and
// cert-manager. Offline: the schemas are compiled into the npm packages.
// Known limit: these schemas allow unknown fields, so a misspelt optional field is not caught
// here; the policy checks read the security-relevant fields by their exact names instead.
import { Certificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { PodMonitor, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { DaemonSet, Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';

import type { K8sObject } from './manifests.js';
import { objectRef } from './manifests.js';

interface Validatable {
  validate(): void;
}
type ModelClass = new (data?: never) => Validatable;

const models: ReadonlyMap<string, ModelClass> = new Map<string, ModelClass>([
  ['v1/ConfigMap', ConfigMap],
  ['v1/Secret', Secret],
  ['v1/Service', Service],
  ['v1/ServiceAccount', ServiceAccount],
  ['apps/v1/Deployment', Deployment],
  ['apps/v1/StatefulSet', StatefulSet],
  ['apps/v1/DaemonSet', DaemonSet],
  ['autoscaling/v2/HorizontalPodAutoscaler', HorizontalPodAutoscaler],
  ['policy/v1/PodDisruptionBudget', PodDisruptionBudget],
  ['networking.k8s.io/v1/NetworkPolicy', NetworkPolicy],
  ['networking.k8s.io/v1/Ingress', Ingress],
  ['keda.sh/v1alpha1/ScaledObject', ScaledObject],
  ['keda.sh/v1alpha1/TriggerAuthentication', TriggerAuthentication],
  ['monitoring.coreos.com/v1/ServiceMonitor', ServiceMonitor],
  ['monitoring.coreos.com/v1/PodMonitor', PodMonitor],
  ['cert-manager.io/v1/Certificate', Certificate],
]);

/** apiVersion/kind pairs this validator has a schema for. */
export function knownKinds(): string[] {
  return [...models.keys()];
}

export interface SchemaIssue {
  /** "Kind/name" */
  readonly object: string;
  readonly message: string;
}

interface AjvLikeError {
  readonly instancePath?: string;
  readonly message?: string;
}

function describe(error: unknown): string[] {
  if (typeof error === 'object' && error !== null && 'errors' in error && Array.isArray(error.errors)) {
    const list = error.errors as AjvLikeError[];
    if (list.length > 0) return list.map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);
  }
  return [error instanceof Error ? error.message : String(error)];
}

/** Every way `object` breaks its API schema; empty when it is valid. */
export function validateObject(object: K8sObject): SchemaIssue[] {
  const ref = objectRef(object);
  const model = models.get(`${object.apiVersion}/${object.kind}`);
  if (model === undefined) {
    return [{ object: ref, message: `no schema for ${object.apiVersion} ${object.kind}` }];
  }
  const issues: SchemaIssue[] = [];
  const name = object.metadata?.name;
  // RFC 1123 label/subdomain rules (Kubernetes object names).
  if (name === undefined || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(name)) {
    issues.push({
      object: ref,
      message: `metadata.name ${JSON.stringify(name)} is not a DNS subdomain name`,
    });
  }
  try {
    new model(object as never).validate();
  } catch (error: unknown) {
    for (const message of describe(error)) issues.push({ object: ref, message });
  }
  return issues;
}

export function validateObjects(objects: readonly K8sObject[]): SchemaIssue[] {
  return objects.flatMap(validateObject);
}
