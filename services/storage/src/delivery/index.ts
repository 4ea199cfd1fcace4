export {
  InboundDelivery,
  createDeliveryConsumer,
  planRecipients,
  type DeliveryDeps,
  type RecipientPlan,
} from './inbound-delivery.js';
export { startPartitionedDelivery, type PartitionedDeliveryOptions } from './partitioned-delivery.js';
