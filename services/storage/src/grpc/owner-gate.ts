/**
 * Refuses user-scoped calls of users this replica does not own (ADR 0007, Routing): with
 * ownership on, every Mailstore call names a user (`user_id`, or the header of an AppendMessage),
 * and only the owner of the user's partition may serve it, since it alone keeps that user's
 * mailbox state in memory. The refusal is UNAVAILABLE with reason NOT_OWNER, sent before the
 * handler runs, so the client may send the same call to the owner (libs/storage-client).
 */
import {
  ServerInterceptingCall,
  status,
  type ServerInterceptor,
  type ServerListener,
  type StatusObject,
} from '@grpc/grpc-js';
import { ErrorReason, toGrpcError } from '@postmesh/contracts';

/** Services whose every call is about one user's mail. */
const USER_SCOPED_SERVICES = ['/postmesh.mailstore.v1.MailstoreService/'];

/** Whether this replica serves a user now; `PartitionCoordinator` answers it. */
export interface UserOwnership {
  owns(userId: string): boolean;
}

/**
 * Holds the replica's ownership once it is known: storage binds its gRPC port before it joins
 * the partition leases (its address is part of the lease record), so the gate starts open.
 * Without `attach` (ownership off) every replica serves every user, as before routing.
 */
export class OwnerGate {
  private ownership: UserOwnership | undefined;

  attach(ownership: UserOwnership): void {
    this.ownership = ownership;
  }

  /** False only when ownership is on and another replica owns the user. */
  mayServe(userId: string): boolean {
    return this.ownership?.owns(userId) ?? true;
  }

  interceptor(): ServerInterceptor {
    return (methodDescriptor, call) => {
      if (!USER_SCOPED_SERVICES.some((prefix) => methodDescriptor.path.startsWith(prefix))) {
        return new ServerInterceptingCall(call);
      }
      let checked = false;
      let refused = false;
      return new ServerInterceptingCall(call, {
        start: (next) => {
          const listener: ServerListener = {
            onReceiveMessage: (message: unknown, messageNext) => {
              if (refused) return;
              if (!checked) {
                checked = true;
                const userId = userIdOf(message);
                if (userId !== undefined && !this.mayServe(userId)) {
                  refused = true;
                  call.sendStatus(notOwner());
                  return;
                }
              }
              messageNext(message);
            },
            onReceiveHalfClose: (halfCloseNext) => {
              if (!refused) halfCloseNext();
            },
          };
          next(listener);
        },
      });
    };
  }
}

function notOwner(): StatusObject {
  const error = toGrpcError(status.UNAVAILABLE, {
    reason: ErrorReason.NOT_OWNER,
    message: "this storage replica does not own the user's partition",
  });
  return { code: error.code, details: error.details, metadata: error.metadata };
}

/** `user_id` of a request, or of the header that opens an AppendMessage stream. */
function userIdOf(message: unknown): string | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  if ('userId' in message && typeof message.userId === 'string') return message.userId;
  if ('part' in message) {
    const part = message.part as { $case?: string; value?: { userId?: unknown } } | undefined;
    if (part?.$case === 'header' && typeof part.value?.userId === 'string') return part.value.userId;
  }
  return undefined;
}
