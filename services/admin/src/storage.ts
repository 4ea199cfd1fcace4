/**
 * The admin service's port to storage: the Directory, Trace and Admin gRPC services as
 * promise-returning functions with a deadline. Only this file knows about grpc-js calls.
 */
import {
  Metadata,
  type ChannelCredentials,
  type CallOptions,
  type ClientUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import {
  AdminServiceClient,
  AdminServiceDefinition,
  DirectoryServiceClient,
  DirectoryServiceDefinition,
  TraceServiceClient,
  TraceServiceDefinition,
} from '@postmesh/contracts';

type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

type Promised<C> = {
  [K in keyof C as C[K] extends Unary<infer _Q, infer _S> ? K : never]: C[K] extends Unary<infer Q, infer S>
    ? (request: Q) => Promise<S>
    : never;
};

const DEADLINE_MS = 15_000;

function promisify<C extends object>(client: C, names: readonly (keyof C)[]): Promised<C> {
  const out: Record<string, unknown> = {};
  for (const name of names) {
    const method = (client[name] as Unary<unknown, unknown>).bind(client);
    out[name as string] = (request: unknown) =>
      new Promise((resolve, reject) => {
        method(request, new Metadata(), { deadline: Date.now() + DEADLINE_MS }, (error, response) => {
          if (error === null) resolve(response);
          else reject(error);
        });
      });
  }
  return out as Promised<C>;
}

/** The RPC names of a service definition, as the generated client's method names. */
const rpcNames = <C extends object>(definition: object): (keyof C)[] =>
  Object.keys(definition) as (keyof C)[];

export interface StoragePort {
  readonly directory: Promised<DirectoryServiceClient>;
  readonly trace: Promised<TraceServiceClient>;
  readonly admin: Promised<AdminServiceClient>;
  close(): void;
}

/** `creds`: this service's mutual-TLS identity (`InternalSecurity.grpcClientCredentials()`). */
export function connectStorage(target: string, creds: ChannelCredentials): StoragePort {
  const directory = new DirectoryServiceClient(target, creds);
  const trace = new TraceServiceClient(target, creds);
  const admin = new AdminServiceClient(target, creds);
  return {
    directory: promisify(directory, rpcNames<DirectoryServiceClient>(DirectoryServiceDefinition)),
    trace: promisify(trace, rpcNames<TraceServiceClient>(TraceServiceDefinition)),
    admin: promisify(admin, rpcNames<AdminServiceClient>(AdminServiceDefinition)),
    close() {
      directory.close();
      trace.close();
      admin.close();
    },
  };
}
