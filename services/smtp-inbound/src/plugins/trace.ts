/**
 * One span per SMTP transaction (MAIL FROM until the transaction ends: queued, refused, RSET or
 * disconnect) and the SMTP metrics. The span is the parent of everything the message causes:
 * the queue hook publishes its jobs inside it, so their `traceparent` (job field and NATS
 * header) names it, and storage's delivery and mta-delivery's attempts join the same trace.
 * Runs first among our plugins so later hooks find the span in the transaction's notes.
 */
import {
  Counter,
  Histogram,
  SpanKind,
  SpanStatusCode,
  context,
  trace,
  tracer,
  type Context,
  type Registry,
  type Span,
} from '@postmesh/telemetry';
import {
  HookCode,
  type HarakaConnection,
  type HarakaTransaction,
  type PluginHooks,
} from '../haraka/types.js';

const SPAN_NOTE = 'postmeshSpan';
const DATA_AT_NOTE = 'postmeshDataAt';
const QUEUED_NOTE = 'postmeshQueued';
const REFUSED_NOTE = 'postmeshRefused';

/** The context of a transaction's span (the active context when it has none). */
export function transactionContext(transaction: HarakaTransaction): Context {
  const span = transaction.notes[SPAN_NOTE] as Span | undefined;
  return span === undefined ? context.active() : trace.setSpan(context.active(), span);
}

export interface TransactionTraceOptions {
  readonly registry: Registry;
}

/** Which listener a connection came in on, for the metrics' `port` label. */
function listenerOf(connection: HarakaConnection): string {
  return String(connection.local.port);
}

export function transactionTraceHooks(options: TransactionTraceOptions): PluginHooks {
  const registers = [options.registry];
  const connections = new Counter({
    name: 'postmesh_smtp_connections_total',
    help: 'SMTP connections accepted, by local port',
    labelNames: ['port'],
    registers,
  });
  const messages = new Counter({
    name: 'postmesh_smtp_messages_total',
    help: 'SMTP transactions that reached DATA, by result (accepted, rejected, deferred)',
    labelNames: ['result'],
    registers,
  });
  const refusals = new Counter({
    name: 'postmesh_smtp_rejections_total',
    help: 'SMTP commands refused, by stage (SMTP hook), reason (the refusing plugin) and class (4xx/5xx)',
    labelNames: ['stage', 'reason', 'class'],
    registers,
  });
  const accept = new Histogram({
    name: 'postmesh_smtp_accept_seconds',
    help: 'End of DATA to the 250 reply (parsing, verification and the durable publish)',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });

  const endTransaction = (connection: HarakaConnection): void => {
    const transaction = connection.transaction;
    if (transaction === null) return;
    const span = transaction.notes[SPAN_NOTE] as Span | undefined;
    if (span === undefined) return;
    delete transaction.notes[SPAN_NOTE];
    const reachedData = transaction.notes[DATA_AT_NOTE] !== undefined;
    const refused = transaction.notes[REFUSED_NOTE] as string | undefined;
    const result =
      transaction.notes[QUEUED_NOTE] === true ? 'accepted' : refused !== undefined ? refused : 'abandoned';
    span.setAttribute('postmesh.smtp.result', result);
    if (reachedData && result !== 'abandoned') messages.inc({ result });
    if (result === 'rejected' || result === 'deferred') span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  };

  return {
    hook_connect_init(next, connection) {
      connections.inc({ port: listenerOf(connection) });
      next();
    },
    hook_mail(next, connection) {
      const transaction = connection.transaction;
      if (transaction !== null && transaction.notes[SPAN_NOTE] === undefined) {
        transaction.notes[SPAN_NOTE] = tracer().startSpan(
          'smtp transaction',
          {
            kind: SpanKind.SERVER,
            attributes: {
              'network.peer.address': connection.remote.ip,
              'server.port': connection.local.port,
              'postmesh.smtp.tls': connection.tls.enabled,
              'postmesh.smtp.relaying': connection.relaying,
            },
          },
          context.active(),
        );
      }
      next();
    },
    hook_data_post(next, connection) {
      if (connection.transaction !== null) connection.transaction.notes[DATA_AT_NOTE] = performance.now();
      next();
    },
    hook_queue_ok(next, connection) {
      const transaction = connection.transaction;
      if (transaction !== null) {
        transaction.notes[QUEUED_NOTE] = true;
        const dataAt = transaction.notes[DATA_AT_NOTE];
        if (typeof dataAt === 'number') accept.observe((performance.now() - dataAt) / 1_000);
        const span = transaction.notes[SPAN_NOTE] as Span | undefined;
        span?.setAttribute('postmesh.smtp.recipients', transaction.rcpt_to.length);
      }
      next();
    },
    /** Haraka runs `deny` whenever a plugin refuses (plugins.js): params are [code, msg, plugin, fn, params, hook]. */
    hook_deny(next, connection, params) {
      const [code, , plugin, , , hook] = Array.isArray(params) ? (params as unknown[]) : [];
      const soft = code === HookCode.DENYSOFT || code === HookCode.DENYSOFTDISCONNECT;
      const stage = typeof hook === 'string' ? hook : 'unknown';
      refusals.inc({
        stage,
        reason: typeof plugin === 'string' ? plugin : 'unknown',
        class: soft ? '4xx' : '5xx',
      });
      const transaction = connection.transaction;
      // A refused RCPT leaves the transaction going; a refused DATA or queue ends the message.
      if (
        transaction !== null &&
        (stage === 'data_post' || stage === 'queue' || stage === 'queue_outbound')
      ) {
        transaction.notes[REFUSED_NOTE] = soft ? 'deferred' : 'rejected';
      }
      next();
    },
    hook_reset_transaction(next, connection) {
      endTransaction(connection);
      next();
    },
    hook_disconnect(next, connection) {
      endTransaction(connection);
      next();
    },
  };
}
