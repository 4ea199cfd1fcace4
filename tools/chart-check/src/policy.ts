// Deployment policy for Postmesh's rendered manifests (DESIGN.md §1 and §8): hardened
// containers, bounded resources, health probes, drain budgets that fit the grace period,
// disruption budgets, pinned images, nothing internal exposed outside the cluster, no API tokens
// mounted, and NetworkPolicies around every workload. Pure: objects in, violations out.
import type { K8sObject } from './manifests.js';
import { objectRef } from './manifests.js';

export const PolicyRule = {
  RunAsNonRoot: 'run-as-non-root',
  ReadOnlyRootFilesystem: 'read-only-root-filesystem',
  NoPrivilegeEscalation: 'no-privilege-escalation',
  NotPrivileged: 'not-privileged',
  DropAllCapabilities: 'drop-all-capabilities',
  SeccompRuntimeDefault: 'seccomp-runtime-default',
  Resources: 'resources',
  Probes: 'probes',
  GracePeriodCoversDrain: 'grace-period-covers-drain',
  ImagePinned: 'image-pinned',
  DisruptionBudget: 'disruption-budget',
  InternalPortNotPublic: 'internal-port-not-public',
  NoServiceAccountToken: 'no-service-account-token',
  NetworkPolicy: 'network-policy',
  AutoscalerTarget: 'autoscaler-target',
  ServiceSelectsPods: 'service-selects-pods',
  ProbePortDeclared: 'probe-port-declared',
  ProbePathsDiffer: 'probe-paths-differ',
  LoadBalancerHealthCheckAllowed: 'load-balancer-health-check-allowed',
} as const;
export type PolicyRule = (typeof PolicyRule)[keyof typeof PolicyRule];

export interface PolicyViolation {
  readonly rule: PolicyRule;
  /** "Kind/name", plus "/container" for container rules. */
  readonly object: string;
  readonly detail: string;
}

export interface PolicyOptions {
  /** Ports that must stay inside the cluster: gRPC and the ops (health/metrics) port. */
  readonly internalPorts?: readonly number[];
  readonly internalPortNames?: readonly string[];
}

const DEFAULT_INTERNAL_PORTS = [7001, 9100] as const;
const DEFAULT_INTERNAL_PORT_NAMES = ['grpc', 'ops'] as const;
const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet']);

type Rec = Readonly<Record<string, unknown>>;

function rec(value: unknown): Rec | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Rec) : undefined;
}
function list(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? (value as unknown[]) : [];
}
function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
function path(value: unknown, ...keys: string[]): unknown {
  let current: unknown = value;
  for (const key of keys) current = rec(current)?.[key];
  return current;
}
function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(rec(value) ?? {})) if (typeof v === 'string') out[k] = v;
  return out;
}

/** Kubernetes label selector semantics (matchLabels AND matchExpressions). */
export function selectorMatches(selector: unknown, labels: Readonly<Record<string, string>>): boolean {
  const sel = rec(selector);
  if (sel === undefined) return false;
  for (const [key, value] of Object.entries(stringMap(sel.matchLabels))) {
    if (labels[key] !== value) return false;
  }
  for (const expression of list(sel.matchExpressions)) {
    const key = str(path(expression, 'key')) ?? '';
    const values = list(path(expression, 'values')).filter((v): v is string => typeof v === 'string');
    const has = Object.hasOwn(labels, key);
    const label = labels[key];
    switch (str(path(expression, 'operator'))) {
      case 'In':
        if (!has || label === undefined || !values.includes(label)) return false;
        break;
      case 'NotIn':
        if (has && label !== undefined && values.includes(label)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

interface Workload {
  readonly object: K8sObject;
  readonly ref: string;
  readonly namespace: string | undefined;
  readonly podLabels: Record<string, string>;
  readonly podSpec: Rec;
}

function workloads(objects: readonly K8sObject[]): Workload[] {
  const out: Workload[] = [];
  for (const object of objects) {
    if (!WORKLOAD_KINDS.has(object.kind)) continue;
    const template = path(object, 'spec', 'template');
    out.push({
      object,
      ref: objectRef(object),
      namespace: object.metadata?.namespace,
      podLabels: stringMap(path(template, 'metadata', 'labels')),
      podSpec: rec(path(template, 'spec')) ?? {},
    });
  }
  return out;
}

function envValue(container: Rec, name: string, objects: readonly K8sObject[]): string | undefined {
  for (const env of list(container.env)) {
    if (str(path(env, 'name')) === name) return str(path(env, 'value'));
  }
  for (const source of list(container.envFrom)) {
    const configMap = str(path(source, 'configMapRef', 'name'));
    if (configMap === undefined) continue;
    const found = objects.find((o) => o.kind === 'ConfigMap' && o.metadata?.name === configMap);
    const value = str(path(found, 'data', name));
    if (value !== undefined) return value;
  }
  return undefined;
}

function preStopSleepSeconds(container: Rec): number {
  const preStop = path(container, 'lifecycle', 'preStop');
  const native = path(preStop, 'sleep', 'seconds');
  if (typeof native === 'number') return native;
  const command = list(path(preStop, 'exec', 'command')).map(String);
  const index = command.findIndex((part) => part === 'sleep' || part.endsWith('/sleep'));
  const seconds = index >= 0 ? Number(command[index + 1]) : 0;
  return Number.isFinite(seconds) ? seconds : 0;
}

function checkContainers(w: Workload, objects: readonly K8sObject[], out: PolicyViolation[]): void {
  const pod = w.podSpec;
  const podSecurity = rec(pod.securityContext) ?? {};
  const grace =
    typeof pod.terminationGracePeriodSeconds === 'number' ? pod.terminationGracePeriodSeconds : 30;
  const groups: [readonly unknown[], boolean][] = [
    [list(pod.initContainers), false],
    [list(pod.containers), true],
  ];
  for (const [containers, isMain] of groups) {
    for (const raw of containers) {
      const c = rec(raw) ?? {};
      const ref = `${w.ref}/${str(c.name) ?? '<unnamed>'}`;
      const add = (rule: PolicyRule, detail: string): void => {
        out.push({ rule, object: ref, detail });
      };
      const sc = rec(c.securityContext) ?? {};
      const runAsNonRoot = sc.runAsNonRoot ?? podSecurity.runAsNonRoot;
      const runAsUser = sc.runAsUser ?? podSecurity.runAsUser;
      if (runAsNonRoot !== true) add(PolicyRule.RunAsNonRoot, 'runAsNonRoot is not true');
      if (runAsUser === 0) add(PolicyRule.RunAsNonRoot, 'runAsUser is 0 (root)');
      if (sc.readOnlyRootFilesystem !== true)
        add(PolicyRule.ReadOnlyRootFilesystem, 'readOnlyRootFilesystem is not true');
      if (sc.allowPrivilegeEscalation !== false) {
        add(PolicyRule.NoPrivilegeEscalation, 'allowPrivilegeEscalation is not false');
      }
      if (sc.privileged === true) add(PolicyRule.NotPrivileged, 'privileged is true');
      const drop = list(path(sc, 'capabilities', 'drop')).map(String);
      const added = list(path(sc, 'capabilities', 'add'));
      if (!drop.includes('ALL'))
        add(PolicyRule.DropAllCapabilities, 'capabilities.drop does not contain ALL');
      if (added.length > 0)
        add(PolicyRule.DropAllCapabilities, `capabilities.add: ${added.map(String).join(', ')}`);
      const seccomp =
        str(path(sc, 'seccompProfile', 'type')) ?? str(path(podSecurity, 'seccompProfile', 'type'));
      if (seccomp !== 'RuntimeDefault')
        add(PolicyRule.SeccompRuntimeDefault, `seccompProfile.type is ${seccomp ?? 'unset'}`);
      for (const kind of ['requests', 'limits'] as const) {
        for (const resource of ['cpu', 'memory'] as const) {
          if (path(c, 'resources', kind, resource) === undefined) {
            add(PolicyRule.Resources, `resources.${kind}.${resource} is missing`);
          }
        }
      }
      const image = str(c.image) ?? '';
      const withoutDigest = image.split('@')[0] ?? '';
      const lastSegment = withoutDigest.slice(withoutDigest.lastIndexOf('/') + 1);
      const tag = lastSegment.includes(':') ? lastSegment.slice(lastSegment.indexOf(':') + 1) : undefined;
      if (!image.includes('@sha256:') && (tag === undefined || tag === 'latest')) {
        add(PolicyRule.ImagePinned, `image ${JSON.stringify(image)} is not pinned to a version or digest`);
      } else if (tag === 'latest') {
        add(PolicyRule.ImagePinned, `image ${JSON.stringify(image)} uses the latest tag`);
      }
      if (!isMain) continue;
      if (rec(c.livenessProbe) === undefined) add(PolicyRule.Probes, 'no livenessProbe');
      if (rec(c.readinessProbe) === undefined) add(PolicyRule.Probes, 'no readinessProbe');
      checkProbes(c, add);
      const drainMs = Number(envValue(c, 'POSTMESH_SHUTDOWN_TIMEOUT_MS', objects) ?? 0);
      const needed = preStopSleepSeconds(c) + Math.ceil((Number.isFinite(drainMs) ? drainMs : 0) / 1000);
      if (grace <= needed) {
        add(
          PolicyRule.GracePeriodCoversDrain,
          `terminationGracePeriodSeconds ${grace} does not exceed preStop sleep + drain budget (${needed}s)`,
        );
      }
    }
  }
  if (pod.automountServiceAccountToken !== false) {
    out.push({
      rule: PolicyRule.NoServiceAccountToken,
      object: w.ref,
      detail: 'pod spec does not set automountServiceAccountToken: false',
    });
  }
}

const PROBES = ['startupProbe', 'livenessProbe', 'readinessProbe'] as const;

/**
 * Probes reach a port the container declares (a typo'd name or number fails every probe and the
 * pod never becomes ready, or is restarted forever), and liveness differs from readiness: a
 * dependency outage (NATS, storage) must make a pod unready, not get it killed.
 */
function checkProbes(c: Rec, add: (rule: PolicyRule, detail: string) => void): void {
  const ports = list(c.ports);
  const names = new Set(ports.map((p) => str(path(p, 'name'))).filter((n) => n !== undefined));
  const numbers = new Set(
    ports.map((p) => path(p, 'containerPort')).filter((n): n is number => typeof n === 'number'),
  );
  for (const kind of PROBES) {
    const probe = rec(c[kind]);
    if (probe === undefined) continue;
    const port =
      path(probe, 'httpGet', 'port') ?? path(probe, 'tcpSocket', 'port') ?? path(probe, 'grpc', 'port');
    if (port === undefined) continue; // exec probes use no port
    const declared =
      typeof port === 'string' ? names.has(port) : typeof port === 'number' && numbers.has(port);
    if (!declared)
      add(
        PolicyRule.ProbePortDeclared,
        `${kind} port ${JSON.stringify(port)} is not a declared container port`,
      );
  }
  const live = path(c, 'livenessProbe', 'httpGet', 'path');
  const ready = path(c, 'readinessProbe', 'httpGet', 'path');
  if (typeof live === 'string' && live === ready) {
    add(PolicyRule.ProbePathsDiffer, `livenessProbe and readinessProbe both GET ${live}`);
  }
}

/** Every Service selects the pods of some rendered workload (else it has no endpoints). */
function checkServiceSelectors(
  objects: readonly K8sObject[],
  all: readonly Workload[],
  out: PolicyViolation[],
): void {
  for (const service of objects) {
    if (service.kind !== 'Service') continue;
    const selector = stringMap(path(service, 'spec', 'selector'));
    if (str(path(service, 'spec', 'type')) === 'ExternalName') continue;
    const detail =
      Object.keys(selector).length === 0
        ? 'has no selector'
        : !all.some(
              (w) =>
                w.namespace === service.metadata?.namespace &&
                selectorMatches({ matchLabels: selector }, w.podLabels),
            )
          ? `selects no pods (${Object.entries(selector)
              .map(([k, v]) => `${k}=${v}`)
              .join(', ')})`
          : undefined;
    if (detail !== undefined)
      out.push({ rule: PolicyRule.ServiceSelectsPods, object: objectRef(service), detail });
  }
}

function checkServices(
  objects: readonly K8sObject[],
  all: readonly Workload[],
  internalPorts: readonly number[],
  internalNames: readonly string[],
  out: PolicyViolation[],
): void {
  for (const service of objects) {
    if (service.kind !== 'Service') continue;
    const type = str(path(service, 'spec', 'type')) ?? 'ClusterIP';
    if (type !== 'LoadBalancer' && type !== 'NodePort') continue;
    const selector = stringMap(path(service, 'spec', 'selector'));
    const backends = all.filter(
      (w) =>
        w.namespace === service.metadata?.namespace &&
        selectorMatches({ matchLabels: selector }, w.podLabels),
    );
    for (const port of list(path(service, 'spec', 'ports'))) {
      const number = path(port, 'port');
      const target = path(port, 'targetPort') ?? number;
      let targetNumbers: unknown[] = [target];
      if (typeof target === 'string') {
        // A named targetPort resolves to the container port of that name in each backend pod.
        targetNumbers = backends.flatMap((w) =>
          list(w.podSpec.containers).flatMap((c) =>
            list(path(c, 'ports'))
              .filter((p) => path(p, 'name') === target)
              .map((p) => path(p, 'containerPort')),
          ),
        );
      }
      const exposed =
        (typeof number === 'number' && internalPorts.includes(number)) ||
        (typeof target === 'string' && internalNames.includes(target)) ||
        targetNumbers.some((t) => typeof t === 'number' && internalPorts.includes(t));
      if (exposed) {
        out.push({
          rule: PolicyRule.InternalPortNotPublic,
          object: objectRef(service),
          detail: `${type} Service exposes internal port ${String(number)} -> ${String(target)}`,
        });
      }
    }
  }
}

const SERVICE_HEALTH_CHECK_PORT = 'service.beta.kubernetes.io/aws-load-balancer-healthcheck-port';
const ALB_HEALTH_CHECK_PORT = 'alb.ingress.kubernetes.io/healthcheck-port';

/** The container port numbers `port` (a number or a port name) means in `w`'s pods. */
function containerPortNumbers(w: Workload, port: unknown): number[] {
  const asNumber = typeof port === 'string' && /^\d+$/.test(port) ? Number(port) : port;
  if (typeof asNumber === 'number') return [asNumber];
  return list(w.podSpec.containers).flatMap((c) =>
    list(path(c, 'ports'))
      .filter((p) => path(p, 'name') === asNumber)
      .map((p) => path(p, 'containerPort'))
      .filter((n): n is number => typeof n === 'number'),
  );
}

/**
 * Whether the NetworkPolicies around `w` let a load balancer reach container port `port`: some
 * ingress rule covers the port and admits addresses (no `from`, or an ipBlock), since balancers
 * with IP targets (AWS NLB/ALB) come from their addresses in the VPC, not from pods.
 */
function admitsLoadBalancer(objects: readonly K8sObject[], w: Workload, port: number): boolean {
  const policies = objects.filter(
    (o) =>
      o.kind === 'NetworkPolicy' &&
      o.metadata?.namespace === w.namespace &&
      list(path(o, 'spec', 'policyTypes')).includes('Ingress') &&
      selectorMatches(path(o, 'spec', 'podSelector'), w.podLabels),
  );
  if (policies.length === 0) return true;
  return policies.some((policy) =>
    list(path(policy, 'spec', 'ingress')).some((rule) => {
      const from = list(path(rule, 'from'));
      const fromAddresses =
        from.length === 0 || from.some((peer) => rec(path(peer, 'ipBlock')) !== undefined);
      const ports = list(path(rule, 'ports'));
      const coversPort =
        ports.length === 0 || ports.some((p) => containerPortNumbers(w, path(p, 'port')).includes(port));
      return fromAddresses && coversPort;
    }),
  );
}

/**
 * The load balancers' health checks reach the pods: for every LoadBalancer Service and ALB Ingress, the
 * port its health check uses (AWS Load Balancer Controller annotations; the traffic port when
 * unset) is admitted by the NetworkPolicies of the pods behind it. A dropped check marks every
 * target unhealthy, and with pod readiness gates no new pod ever becomes ready.
 */
function checkHealthChecks(
  objects: readonly K8sObject[],
  all: readonly Workload[],
  out: PolicyViolation[],
): void {
  const backendsOf = (service: K8sObject): Workload[] => {
    const selector = stringMap(path(service, 'spec', 'selector'));
    return all.filter(
      (w) =>
        w.namespace === service.metadata?.namespace &&
        Object.keys(selector).length > 0 &&
        selectorMatches({ matchLabels: selector }, w.podLabels),
    );
  };
  const check = (
    source: K8sObject,
    backends: Workload[],
    healthPort: string | undefined,
    trafficPorts: unknown[],
  ) => {
    for (const w of backends) {
      const ports =
        healthPort === undefined || healthPort === 'traffic-port'
          ? trafficPorts.flatMap((p) => containerPortNumbers(w, p))
          : containerPortNumbers(w, healthPort);
      for (const port of ports) {
        if (admitsLoadBalancer(objects, w, port)) continue;
        out.push({
          rule: PolicyRule.LoadBalancerHealthCheckAllowed,
          object: objectRef(source),
          detail: `health checks to port ${port} of ${w.ref} are not admitted by its NetworkPolicy`,
        });
      }
    }
  };
  for (const service of objects) {
    if (service.kind !== 'Service' || str(path(service, 'spec', 'type')) !== 'LoadBalancer') continue;
    const traffic = list(path(service, 'spec', 'ports')).map((p) => path(p, 'targetPort') ?? path(p, 'port'));
    check(
      service,
      backendsOf(service),
      stringMap(service.metadata?.annotations)[SERVICE_HEALTH_CHECK_PORT],
      traffic,
    );
  }
  for (const ingress of objects) {
    if (ingress.kind !== 'Ingress') continue;
    const annotations = stringMap(ingress.metadata?.annotations);
    // An in-cluster controller (ingress-nginx) proxies from its own pods and checks nothing; an
    // ALB sends and health-checks from its addresses in the VPC.
    const isAlb =
      str(path(ingress, 'spec', 'ingressClassName')) === 'alb' ||
      Object.keys(annotations).some((key) => key.startsWith('alb.ingress.kubernetes.io/'));
    if (!isAlb) continue;
    const healthPort = annotations[ALB_HEALTH_CHECK_PORT];
    const backends = list(path(ingress, 'spec', 'rules')).flatMap((rule) =>
      list(path(rule, 'http', 'paths')).map((p) => path(p, 'backend', 'service')),
    );
    for (const backend of backends) {
      const service = objects.find(
        (o) =>
          o.kind === 'Service' &&
          o.metadata?.namespace === ingress.metadata?.namespace &&
          o.metadata?.name === str(path(backend, 'name')),
      );
      if (service === undefined) continue;
      const wanted = path(backend, 'port', 'number') ?? path(backend, 'port', 'name');
      const traffic = list(path(service, 'spec', 'ports'))
        .filter((p) => path(p, 'port') === wanted || path(p, 'name') === wanted)
        .map((p) => path(p, 'targetPort') ?? path(p, 'port'));
      check(ingress, backendsOf(service), healthPort, traffic);
    }
  }
}

/** Every policy violation in a set of rendered objects; empty when the set complies. */
export function checkPolicy(objects: readonly K8sObject[], options: PolicyOptions = {}): PolicyViolation[] {
  const out: PolicyViolation[] = [];
  const all = workloads(objects);
  for (const w of all) checkContainers(w, objects, out);

  for (const w of all) {
    if (w.object.kind !== 'Deployment') continue;
    const covered = objects.some(
      (o) =>
        o.kind === 'PodDisruptionBudget' &&
        o.metadata?.namespace === w.namespace &&
        selectorMatches(path(o, 'spec', 'selector'), w.podLabels),
    );
    if (!covered) {
      out.push({
        rule: PolicyRule.DisruptionBudget,
        object: w.ref,
        detail: 'no PodDisruptionBudget selects its pods',
      });
    }
    const policies = objects.filter(
      (o) =>
        o.kind === 'NetworkPolicy' &&
        o.metadata?.namespace === w.namespace &&
        selectorMatches(path(o, 'spec', 'podSelector'), w.podLabels),
    );
    const types = new Set(policies.flatMap((p) => list(path(p, 'spec', 'policyTypes')).map(String)));
    if (!types.has('Ingress') || !types.has('Egress')) {
      out.push({
        rule: PolicyRule.NetworkPolicy,
        object: w.ref,
        detail: 'no NetworkPolicy restricts both ingress and egress of its pods',
      });
    }
  }

  for (const account of objects) {
    if (account.kind === 'ServiceAccount' && account.automountServiceAccountToken !== false) {
      out.push({
        rule: PolicyRule.NoServiceAccountToken,
        object: objectRef(account),
        detail: 'automountServiceAccountToken is not false',
      });
    }
  }

  for (const scaler of objects) {
    const isHpa = scaler.kind === 'HorizontalPodAutoscaler';
    if (!isHpa && scaler.kind !== 'ScaledObject') continue;
    const target = str(path(scaler, 'spec', 'scaleTargetRef', 'name'));
    const targetKind = str(path(scaler, 'spec', 'scaleTargetRef', 'kind')) ?? 'Deployment';
    if (!all.some((w) => w.object.kind === targetKind && w.object.metadata?.name === target)) {
      out.push({
        rule: PolicyRule.AutoscalerTarget,
        object: objectRef(scaler),
        detail: `scales ${targetKind}/${target ?? '<unset>'}, which is not rendered`,
      });
    }
  }

  checkServiceSelectors(objects, all, out);
  checkHealthChecks(objects, all, out);
  checkServices(
    objects,
    all,
    options.internalPorts ?? DEFAULT_INTERNAL_PORTS,
    options.internalPortNames ?? DEFAULT_INTERNAL_PORT_NAMES,
    out,
  );
  return out;
}
