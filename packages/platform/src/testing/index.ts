export * from "./infra.js";
export * from "./postgres.js";
export * from "./call-context.js";
export * from "./consul-http-api.js";
export * from "./rabbitmq.js";
export * from "./service-process.js";
export * from "./field-refusal.js";
export * from "./prometheus.js";
