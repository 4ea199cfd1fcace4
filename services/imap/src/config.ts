import { commonSchema, hostPort, port, string } from '@postmesh/config';

/** Environment of the imap service; defaults are the local stack's. */
export const schema = {
  ...commonSchema,
  POSTMESH_OPS_PORT: port(9103),
  POSTMESH_IMAP_HOST: string('127.0.0.1'),
  POSTMESH_IMAP_PORT: port(1143),
  POSTMESH_IMAPS_PORT: port(1993),
  POSTMESH_STORAGE_GRPC: hostPort('127.0.0.1:7001'),
};
