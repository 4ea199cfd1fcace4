export {
  OPERATOR_IDENTITY,
  SERVICE_IDENTITIES,
  identityUri,
  insecureInternal,
  loadInternalSecurity,
  mutualTls,
  readIdentityMaterial,
  type IdentityMaterial,
  type InternalIdentity,
  type InternalSecurity,
  type ServiceIdentity,
} from './identity.js';
