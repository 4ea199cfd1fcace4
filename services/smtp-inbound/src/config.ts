import { commonSchema, hostPort, port, string } from '@postmesh/config';

/** Environment of the smtp-inbound service; defaults are the local stack's. */
export const schema = {
  ...commonSchema,
  POSTMESH_OPS_PORT: port(9101),
  /** MX listener (dev 2525); the Haraka listeners arrive with the inbound pipeline. */
  POSTMESH_SMTP_HOST: string('127.0.0.1'),
  POSTMESH_SMTP_PORT: port(2525),
  POSTMESH_SUBMISSION_PORT: port(2587),
  POSTMESH_SUBMISSIONS_PORT: port(2465),
  POSTMESH_STORAGE_GRPC: hostPort('127.0.0.1:7001'),
};
