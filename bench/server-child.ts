/**
 * Entry point of a bench server process (forked by server-process.ts, never
 * run by hand): `server-child.ts platform|bare|observed|sampled|gateway|proxy|otlp-sink`. Each server gets a process of
 * its own so it does not share an event loop, or a CPU, with the load client.
 */
import { performance, PerformanceObserver } from "node:perf_hooks";
import type { RunningServer } from "./running-server.js";
import { isServerKind, type FromChild, type ServerKind, type StartSettings, type ToChild } from "./server-protocol.js";

function send(message: FromChild): void {
  process.send?.(message);
}

async function startServer(kind: ServerKind, responseBase64: string | undefined, settings: StartSettings = {}): Promise<RunningServer> {
  // Imported on demand so the bare child loads grpc-js and nothing else.
  if (kind === "gateway" || kind === "proxy") {
    if (settings.upstream === undefined) throw new Error(`the ${kind} needs the upstream catalog's address`);
    if (kind === "proxy") {
      const { startBareProxy } = await import("./bare-proxy.js");
      return startBareProxy(settings.upstream);
    }
    const { startBenchGateway } = await import("./gateway-server.js");
    return startBenchGateway(settings.upstream, settings.catalogCacheMs ?? 0, settings.grpcPassthrough ?? true);
  }
  if (kind === "otlp-sink") {
    const { startOtlpSink } = await import("./otlp-sink.js");
    return startOtlpSink();
  }
  if (kind === "platform" || kind === "observed" || kind === "sampled") {
    const { startPlatformCatalog } = await import("./platform-server.js");
    if (kind === "platform") return startPlatformCatalog();
    if (settings.otlpEndpoint === undefined) throw new Error(`the ${kind} server needs the OTLP sink's address`);
    return startPlatformCatalog({ observed: { otlpEndpoint: settings.otlpEndpoint, ...(kind === "sampled" ? { sampleRatio: 0.1 } : {}) } });
  }
  if (responseBase64 === undefined) throw new Error("the bare server needs the response bytes to answer with");
  const { startBareServer } = await import("./bare-server.js");
  return startBareServer(Buffer.from(responseBase64, "base64"));
}

async function main(): Promise<void> {
  const kind = process.argv[2];
  if (!isServerKind(kind)) throw new Error(`usage: server-child.ts platform|bare|observed|sampled|gateway|proxy|otlp-sink (got ${String(kind)})`);
  if (!process.send) throw new Error("server-child.ts must be forked with an IPC channel by the bench");
  // The parent is gone (crashed, killed): never outlive it holding a port.
  process.on("disconnect", () => process.exit(0));

  // Every GC pause of this thread, for the marks (background GC threads show in process CPU only).
  let gcPauseMs = 0;
  new PerformanceObserver((entries) => {
    for (const entry of entries.getEntries()) gcPauseMs += entry.duration;
  }).observe({ entryTypes: ["gc"] });
  const collect = (globalThis as { gc?: () => void }).gc;

  let server: RunningServer | undefined;
  process.on("message", (message: ToChild) => {
    switch (message.type) {
      case "start":
        startServer(kind, message.responseBase64, message.settings).then(
          (started) => {
            server = started;
            send({ type: "ready", port: started.port });
          },
          (error: unknown) => {
            send({ type: "failed", message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
            process.exit(1);
          },
        );
        return;
      case "mark": {
        const cpu = process.cpuUsage();
        send({
          type: "mark",
          id: message.id,
          cpuUserUs: cpu.user,
          cpuSystemUs: cpu.system,
          served: server?.served() ?? 0,
          atMs: performance.now(),
          monotonicUs: Number(process.hrtime.bigint() / 1000n),
          gcPauseUs: gcPauseMs * 1000,
        });
        return;
      }
      case "collect":
        if (!collect) throw new Error("server-child.ts needs --expose-gc for a full collection (server-process.ts passes it)");
        collect();
        send({ type: "collected", id: message.id });
        return;
      case "stop":
        // process.exit (not a kill) so that --cpu-prof writes its profile.
        (server ? server.stop() : Promise.resolve()).finally(() => process.exit(0));
        return;
    }
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`bench server child failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
