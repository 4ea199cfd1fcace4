/**
 * A real grpc-js server on a loopback port with programmable Directory and Mailstore handlers,
 * for the client's unit tests. Every handler records the calls it got (request and metadata).
 */
import {
  Server,
  ServerCredentials,
  status,
  type Metadata,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import {
  DirectoryServiceDefinition,
  MailstoreServiceDefinition,
  toGrpcError,
  type ErrorDetailInit,
} from '@postmesh/contracts';

export interface ReceivedCall {
  readonly method: string;
  readonly request: unknown;
  readonly metadata: Metadata;
  readonly deadline: number | undefined;
}

/** What a handler does with a call: answer, fail with a status, or never answer. */
export type Answer =
  | { readonly ok: unknown }
  | { readonly code: status; readonly detail?: ErrorDetailInit }
  | { readonly hang: true };

export class FakeStorage {
  readonly calls: ReceivedCall[] = [];
  private readonly answers = new Map<string, (request: unknown, n: number) => Answer>();

  private constructor(
    private readonly server: Server,
    readonly address: string,
  ) {}

  static async start(): Promise<FakeStorage> {
    const server = new Server();
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) =>
        error === null ? resolve(bound) : reject(error),
      ),
    );
    const fake = new FakeStorage(server, `127.0.0.1:${port}`);
    server.addService(DirectoryServiceDefinition, fake.handlers(DirectoryServiceDefinition));
    server.addService(MailstoreServiceDefinition, fake.handlers(MailstoreServiceDefinition));
    return fake;
  }

  /** How `method` answers its n-th call (1-based). Unset methods fail UNIMPLEMENTED. */
  on(method: string, answer: (request: unknown, n: number) => Answer): this {
    this.answers.set(method, answer);
    return this;
  }

  callsOf(method: string): ReceivedCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.tryShutdown(() => resolve()));
  }

  private answer(method: string, request: unknown): Answer {
    const n = this.callsOf(method).length;
    return this.answers.get(method)?.(request, n) ?? { code: status.UNIMPLEMENTED };
  }

  private handlers(definition: Record<string, { requestStream: boolean; responseStream: boolean }>) {
    const out: UntypedServiceImplementation = {};
    for (const [method, rpc] of Object.entries(definition)) {
      type Call = {
        request?: unknown;
        metadata: Metadata;
        getDeadline(): Date | number;
      };
      const record = (call: Call, request: unknown): void => {
        const deadline = call.getDeadline();
        this.calls.push({
          method,
          request,
          metadata: call.metadata,
          deadline: deadline === Infinity ? undefined : Number(deadline),
        });
      };
      const failure = (a: { code: status; detail?: ErrorDetailInit }): Error =>
        a.detail === undefined
          ? Object.assign(new Error('failed'), { code: a.code, details: 'failed' })
          : toGrpcError(a.code, a.detail);
      if (!rpc.requestStream && !rpc.responseStream) {
        out[method] = (call: Call, callback: (e: Error | null, r?: unknown) => void) => {
          record(call, call.request);
          const a = this.answer(method, call.request);
          if ('hang' in a) return;
          if ('ok' in a) callback(null, a.ok);
          else callback(failure(a));
        };
      } else if (rpc.responseStream) {
        out[method] = (
          call: Call & { write(m: unknown): void; end(): void; emit(e: string, x: unknown): void },
        ) => {
          record(call, call.request);
          const a = this.answer(method, call.request);
          if ('hang' in a) return;
          if ('ok' in a) {
            for (const item of a.ok as unknown[]) call.write(item);
            call.end();
          } else call.emit('error', failure(a));
        };
      } else {
        out[method] = (
          call: Call & AsyncIterable<unknown>,
          callback: (e: Error | null, r?: unknown) => void,
        ) => {
          void (async () => {
            const parts: unknown[] = [];
            for await (const part of call) parts.push(part);
            record(call, parts);
            const a = this.answer(method, parts);
            if ('hang' in a) return;
            if ('ok' in a) callback(null, a.ok);
            else callback(failure(a));
          })();
        };
      }
    }
    return out;
  }
}
