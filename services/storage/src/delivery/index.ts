export {
  InboundDelivery,
  createDeliveryConsumer,
  planRecipients,
  type DeliveryDeps,
  type RecipientPlan,
} from './inbound-delivery.js';
