export {
  TRACE_EVENT_KINDS,
  parseMailEvent,
  stripAngles,
  type MailEventPayload,
  type TraceEventKind,
} from './event.js';
export { TraceStore } from './trace-store.js';
export { createEventsConsumer } from './events-consumer.js';
