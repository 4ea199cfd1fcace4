export { DirectoryService, type DirectoryServiceDeps } from './directory-service.js';
export { ARGON2_PARAMS, PASSWORD_MIN_LENGTH } from './passwords.js';
export { fail, ok, type Result } from './result.js';
