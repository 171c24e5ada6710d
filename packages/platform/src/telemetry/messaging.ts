/**
 * Trace context and metrics across the broker: the relay's publish continues
 * the trace stored with each outbox row and hands its own span on in the
 * message headers; a consumer's span continues that one.
 */
import { context, SpanKind, SpanStatusCode, trace, type Span, type Tracer } from "@opentelemetry/api";
import { REQUEST_ID_HEADER } from "../call-context.js";
import type { OutgoingMessage } from "../messaging/ports.js";
import type { Delivery } from "../queue/ports.js";
import { runWithRequestId } from "./log-context.js";
import type { ServiceMetrics } from "./metrics.js";
import { extractTraceContext, injectTraceContext } from "./tracing.js";

export interface PublishSpans {
  /** The messages to publish, each carrying its publish span's traceparent. */
  readonly messages: OutgoingMessage[];
  end(error?: unknown): void;
}

/**
 * One producer span per message whose headers carry a trace context (rows
 * written outside any trace get none); each message's headers are then
 * rewritten to carry its publish span, so the consumer hangs under it.
 */
export function startPublishSpans(tracer: Tracer | undefined, messages: OutgoingMessage[]): PublishSpans {
  if (!tracer) return { messages, end: () => undefined };
  const spans: Span[] = [];
  const traced = messages.map((message) => {
    const parent = extractTraceContext(message.headers);
    if (trace.getSpan(parent) === undefined) return message;
    const span = tracer.startSpan(
      `publish ${message.exchange}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          "messaging.system": "rabbitmq",
          "messaging.operation.type": "send",
          "messaging.destination.name": message.exchange,
          "messaging.rabbitmq.destination.routing_key": message.routingKey,
          "messaging.message.id": message.messageId,
        },
      },
      parent,
    );
    spans.push(span);
    const headers: Record<string, string | number> = { ...message.headers };
    injectTraceContext(headers, trace.setSpan(parent, span));
    return { ...message, headers };
  });
  return {
    messages: traced,
    end(error) {
      for (const span of spans) {
        if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
        span.end();
      }
    },
  };
}

export interface ConsumerTelemetry {
  readonly tracer: Tracer | undefined;
  readonly metrics?: Pick<ServiceMetrics, "consumeLag">;
}

/**
 * Wraps a task-queue handler: records the message's age (consumer lag),
 * continues the publisher's trace in a consumer span, and puts the message's
 * request id on every log line the handler writes.
 */
export function instrumentHandler<T>(telemetry: ConsumerTelemetry, queue: string, handle: (delivery: Delivery<T>) => Promise<void>): (delivery: Delivery<T>) => Promise<void> {
  const { tracer, metrics } = telemetry;
  return async (delivery) => {
    if (metrics && delivery.createdAt) metrics.consumeLag(queue, (Date.now() - delivery.createdAt.getTime()) / 1000);
    const requestHeader = delivery.headers[REQUEST_ID_HEADER];
    const requestId = typeof requestHeader === "string" ? requestHeader : undefined;
    if (!tracer) return runWithRequestId(requestId, () => handle(delivery));
    const parent = extractTraceContext(delivery.headers);
    const span = tracer.startSpan(
      `process ${queue}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          "messaging.system": "rabbitmq",
          "messaging.operation.type": "process",
          "messaging.destination.name": queue,
          "messaging.rabbitmq.destination.routing_key": delivery.routingKey,
          "messaging.message.id": delivery.messageId,
          "meshwork.delivery.attempt": delivery.attempt,
        },
      },
      parent,
    );
    try {
      await context.with(trace.setSpan(parent, span), () => runWithRequestId(requestId, () => handle(delivery)));
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      throw error;
    } finally {
      span.end();
    }
  };
}
