import { commonSchema, hostPort, port, string, url } from '@postmesh/config';

/** Environment of the storage service; defaults are the local stack's. */
export const schema = {
  ...commonSchema,
  POSTMESH_OPS_PORT: port(9102),
  MONGODB_URI: url('mongodb://127.0.0.1:27017/', ['mongodb:', 'mongodb+srv:']),
  /** Database name (DESIGN §4: `postmesh`). */
  POSTMESH_MONGODB_DB: string('postmesh', { pattern: /^[A-Za-z0-9_-]{1,63}$/ }),
  POSTMESH_GRPC_HOST: string('127.0.0.1'),
  POSTMESH_GRPC_PORT: port(7001),
  POSTMESH_STORAGE_GRPC: hostPort('127.0.0.1:7001'),
};
