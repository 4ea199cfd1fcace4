import { commonSchema, hostPort, port } from '@postmesh/config';

/** Environment of the mta-delivery service; defaults are the local stack's. */
export const schema = {
  ...commonSchema,
  POSTMESH_OPS_PORT: port(9104),
  POSTMESH_STORAGE_GRPC: hostPort('127.0.0.1:7001'),
};
