import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import { JetStreamApiError, type JetStreamClient, type PubAck } from '@nats-io/jetstream';
import { injectTraceContext } from '@postmesh/telemetry';

export class PublishError extends Error {
  override readonly name = 'PublishError';
  /**
   * True only when the server answered that it did not store the message (an API error, or no
   * stream listening). A timeout or a lost connection leaves it unknown: the request may sit in
   * the client's reconnect buffer or the PubAck may have been lost, so the message can still be
   * (or already be) in the stream, and whatever it references must be kept.
   */
  readonly notStored: boolean;

  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    const cause = options.cause;
    // `JetStreamNotEnabled` (no responders: no stream took the subject) is not exported by name.
    this.notStored =
      cause instanceof JetStreamApiError || (cause instanceof Error && cause.name === 'JetStreamNotEnabled');
  }
}

export interface DurablePublishOptions {
  /** `Nats-Msg-Id`: a retried publish with the same id inside the duplicate window is dropped. */
  readonly msgId: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** How long to wait for the PubAck. */
  readonly timeoutMs?: number;
  /** Fail unless the subject is bound to this stream (catches a missing stream early). */
  readonly expectStream?: string;
}

/**
 * Publish and wait until JetStream has stored the message (and, with `sync_always`, fsynced it):
 * the PubAck is the point after which a message may be acknowledged to its sender (DESIGN §2 step 4).
 * `duplicate` in the result means an earlier attempt already stored it, which is also success.
 * The active span's W3C trace context travels in the `traceparent` header (DESIGN §3) unless
 * the caller set one (a dead letter keeps its job's).
 */
export async function publishDurable(
  js: JetStreamClient,
  subject: string,
  payload: Uint8Array,
  options: DurablePublishOptions,
): Promise<PubAck> {
  const fields: Record<string, string> = { ...options.headers };
  if (fields.traceparent === undefined) injectTraceContext(fields);
  let hdrs: MsgHdrs | undefined;
  if (Object.keys(fields).length > 0) {
    hdrs = natsHeaders();
    for (const [key, value] of Object.entries(fields)) hdrs.set(key, value);
  }
  try {
    return await js.publish(subject, payload, {
      msgID: options.msgId,
      timeout: options.timeoutMs ?? 10_000,
      ...(hdrs ? { headers: hdrs } : {}),
      ...(options.expectStream ? { expect: { streamName: options.expectStream } } : {}),
    });
  } catch (error) {
    throw new PublishError(`publish to ${subject} was not acknowledged`, { cause: error });
  }
}
