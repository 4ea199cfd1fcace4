export {
  DEFAULT_KUBE_VERSION,
  HelmNotFoundError,
  helmPath,
  lintChart,
  renderChart,
  requireHelm,
  runHelm,
} from './helm.js';
export type { ChartOptions, HelmRun, Rendered } from './helm.js';
export { ManifestParseError, objectRef, parseManifests } from './manifests.js';
export type { K8sObject, ObjectMeta, RenderedObject } from './manifests.js';
export { knownKinds, validateObject, validateObjects } from './schema.js';
export type { SchemaIssue } from './schema.js';
export { PolicyRule, checkPolicy, selectorMatches } from './policy.js';
export type { PolicyOptions, PolicyViolation } from './policy.js';
export {
  SERVICES,
  checkServiceConfig,
  containerEnvironments,
  foreignVariables,
  unmountedPaths,
} from './env-contract.js';
export type { ContainerEnvironment, ServiceConfigCheck } from './env-contract.js';
export { validateStrict } from './strict-schema.js';
