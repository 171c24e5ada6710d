/**
 * @meshwork/testing: the test kit. Only tests depend on it (a devDependency),
 * so production images never carry it.
 */
export * from "./scope.js";
export * from "./infra.js";
export * from "./assertions.js";
export * from "./postgres.js";
export * from "./call-context.js";
export * from "./consul-http-api.js";
export * from "./rabbitmq.js";
export * from "./service-process.js";
export * from "./field-refusal.js";
export * from "./prometheus.js";
export * from "./queue-behaviour.js";
/** Spans kept in memory, for tests that look at what a service traced (the SDK's own exporter). */
export { InMemorySpanExporter } from "@opentelemetry/sdk-trace";
export * from "./log-capture.js";
export * from "./databases.js";
