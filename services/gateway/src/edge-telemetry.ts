/**
 * Tracing and RED metrics of the public RPCs. Two hooks, because Connect
 * runs the request gate (token, rate limits) outside its interceptors: the
 * gate wrapper starts the call's server span (continuing a browser's
 * traceparent when it sent one) and counts calls the gate refuses; the
 * interceptor runs the handler inside that span — for streams, each step of
 * the stream — and counts the calls that got past the gate when they end.
 */
import { Code, ConnectError, createContextKey, type ContextValues, type Interceptor } from "@connectrpc/connect";
import { inServerSpan, runWithRequestId, startServerSpan, type Code as GrpcCode, type ServerSpan, type Telemetry } from "@meshwork/platform";
import { requestIdKey, type RequestGate } from "./edge-context.js";

interface EdgeCall {
  readonly service: string;
  readonly method: string;
  readonly started: number;
  readonly span: ServerSpan | undefined;
  done: boolean;
}

const edgeCallKey = createContextKey<EdgeCall | undefined>(undefined, { description: "the call's span and start time" });

export interface EdgeTelemetry {
  /** Wraps the request gate: the span starts before it, and a refusal is recorded. */
  gate(inner: RequestGate): RequestGate;
  /** First in the interceptor list. */
  readonly interceptor: Interceptor;
  /**
   * For a call the gate let in and that is served without Connect (the
   * gRPC path, grpc-passthrough.ts): runs `work` in the call's span and
   * request-id scope, as the interceptor runs a handler.
   */
  within<T>(values: ContextValues, work: () => T): T;
  /** Records the end of such a call (metrics, span), as the interceptor does. */
  settle(values: ContextValues, code: Code, message?: string): void;
}

export function createEdgeTelemetry(telemetry: Pick<Telemetry, "tracer" | "metrics">): EdgeTelemetry {
  const { tracer, metrics } = telemetry;
  const finish = (call: EdgeCall | undefined, code: Code, message?: string): void => {
    if (!call || call.done) return;
    call.done = true;
    // Connect's codes are gRPC's numbers (Ok is 0, which Connect leaves out of its enum).
    metrics.serverCall(call.service, call.method, code as number as GrpcCode, (performance.now() - call.started) / 1000);
    call.span?.end(code as number as GrpcCode, message);
  };
  const codeOf = (error: unknown): ConnectError => ConnectError.from(error);
  // With tracing on, the OpenTelemetry context manager keeps an
  // AsyncLocalStorage active anyway, and the call's log lines join the
  // request id's scope too. Off, that scope would be the only
  // AsyncLocalStorage in the gateway, and entering it switches async
  // hooks on for the whole process: every promise, tick and handle pays
  // for them (15–19% of a cache hit's server CPU at c=16 by the medians
  // of two npm run bench -- edge runs, though within their spread on
  // shared cores). The gateway's own lines inside a call name the
  // request id themselves (upstream.ts, public-errors.ts, access-log.ts).
  const within = tracer
    ? <T>(values: ContextValues, work: () => T): T => inServerSpan(values.get(edgeCallKey)?.span, () => runWithRequestId(values.get(requestIdKey), work))
    : <T>(_values: ContextValues, work: () => T): T => work();

  return {
    gate(inner) {
      return async (ctx) => {
        const service = ctx.method.parent.typeName;
        const call: EdgeCall = {
          service,
          method: ctx.method.name,
          started: performance.now(),
          span: tracer ? startServerSpan(tracer, service, ctx.method.name, ctx.requestHeader, "connect_rpc") : undefined,
          done: false,
        };
        ctx.values.set(edgeCallKey, call);
        try {
          // The token check may fetch identity's keys: that call joins the trace too.
          await inServerSpan(call.span, () => inner(ctx));
        } catch (error) {
          const refused = codeOf(error);
          finish(call, refused.code, refused.rawMessage);
          throw error;
        }
      };
    },
    interceptor: (next) => async (request) => {
      const call = request.contextValues.get(edgeCallKey);
      const inCall = <T>(work: () => T): T => within(request.contextValues, work);
      let response: Awaited<ReturnType<typeof next>>;
      try {
        response = await inCall(() => next(request));
      } catch (error) {
        const failed = codeOf(error);
        finish(call, failed.code, failed.rawMessage);
        throw error;
      }
      if (!response.stream) {
        finish(call, 0 as Code);
        return response;
      }
      // A stream is served as its messages are pulled: pull each inside the
      // call's span, and end the span with the stream.
      const messages = response.message[Symbol.asyncIterator]();
      const traced: AsyncIterator<typeof response.message extends AsyncIterable<infer M> ? M : never> = {
        next: async () => {
          try {
            const step = await inCall(() => messages.next());
            if (step.done) finish(call, 0 as Code);
            return step;
          } catch (error) {
            const failed = codeOf(error);
            finish(call, failed.code, failed.rawMessage);
            throw error;
          }
        },
        return: async (value) => {
          finish(call, Code.Canceled, "the client went away");
          return (await messages.return?.(value)) ?? { done: true, value };
        },
      };
      return { ...response, message: { [Symbol.asyncIterator]: () => traced } };
    },
    within,
    settle: (values, code, message) => finish(values.get(edgeCallKey), code, message),
  };
}
