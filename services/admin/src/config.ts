import { commonSchema, hostPort, port, string } from '@postmesh/config';

/** Environment of the admin service; defaults are the local stack's. */
export const schema = {
  ...commonSchema,
  POSTMESH_OPS_PORT: port(9105),
  POSTMESH_HTTP_HOST: string('127.0.0.1'),
  POSTMESH_HTTP_PORT: port(8080),
  POSTMESH_STORAGE_GRPC: hostPort('127.0.0.1:7001'),
};
