export { KeyIntegrityError, type KeyProvider, type UserKeyring } from './types.js';
export { bytesOf, open, seal } from './aead.js';
export {
  LocalKeyProvider,
  kekIdOf,
  loadLocalKeyProvider,
  readKekFile,
  type LocalKekFiles,
} from './local-key-provider.js';
export { kmsClient, loadKmsKeyProvider, regionOf, type KmsKekOptions } from './kms-key-provider.js';
export {
  MongoUserKeyring,
  adminTotpContext,
  UnknownUserKeyError,
  dkimKeyContext,
  newUserDataKey,
  rotateKek,
  userDataKeyContext,
  type KekRotationOptions,
  type KekRotationResult,
  type UserKeyringOptions,
} from './user-keyring.js';
