export * from "./ports.js";
export { LAST_ERROR_HEADER } from "./failure.js";
export { createAmqpTaskQueue, type AmqpTaskQueueOptions } from "./amqp.js";
export { amqpTopologyOf, declareAmqpTopology, deleteAmqpTopology, requeueExchangeName, type AmqpTopology } from "./amqp-topology.js";
export { createMemoryTaskQueue, systemQueueClock, type DeadLetter, type MemoryTaskQueue, type MemoryTaskQueueOptions, type QueueClock } from "./memory.js";
export { AMQP_USERS, amqpPermissions, NOTHING, queueObjectsPattern, type AmqpPermission, type AmqpPermissionTopology, type AmqpService } from "./permissions.js";
