export { TraceStore } from './trace-store.js';
export { createEventsConsumer } from './events-consumer.js';
