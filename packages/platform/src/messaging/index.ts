export * from "./ports.js";
export * from "./amqp-publisher.js";
export * from "./memory-broker.js";
