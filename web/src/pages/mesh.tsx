import { ServingStatus, type MeshServiceStatus } from "@meshwork/contracts/shop/gateway/v1/mesh";
import { useState } from "react";
import { meshClient } from "../clients.js";
import { ErrorNotice } from "../error-notice.js";
import { formatTime } from "../format.js";
import { useLiveStream } from "../live.js";
import type { Timestamp } from "@bufbuild/protobuf/wkt";

const HEALTH: Record<ServingStatus, string> = {
  [ServingStatus.UNSPECIFIED]: "unknown",
  [ServingStatus.SERVING]: "serving",
  [ServingStatus.NOT_SERVING]: "not serving",
  [ServingStatus.UNREACHABLE]: "unreachable",
};

const ms = (value: number): string => (value >= 10 ? `${Math.round(value)} ms` : `${value.toFixed(1)} ms`);

/** Every service and instance the gateway knows, refreshed live over WatchMeshStatus. */
export function MeshPage() {
  const [services, setServices] = useState<MeshServiceStatus[]>();
  const [observed, setObserved] = useState<Timestamp>();
  const [error, setError] = useState<unknown>();
  const state = useLiveStream(
    {
      open: (signal) => meshClient.watchMeshStatus({ intervalMs: 2000 }, { signal }),
      onMessage: (message) => {
        setError(undefined);
        setServices(message.services);
        setObserved(message.observeTime);
      },
      done: () => false,
      onError: setError,
    },
    [],
  );
  const hasBreakers = services?.some((s) => s.instances.some((i) => i.breakerState !== "")) ?? false;
  const hasLatency = services?.some((s) => s.instances.some((i) => i.latencyP50Ms > 0 || i.latencyP99Ms > 0)) ?? false;
  return (
    <section>
      <h1>Mesh</h1>
      <p className="muted">
        {state === "live" ? "Live" : state}
        {observed ? `, observed at ${formatTime(observed)}` : ""}
      </p>
      {error !== undefined && <ErrorNotice error={error} />}
      <table className="mesh" aria-label="mesh status">
        <thead>
          <tr>
            <th>Service</th>
            <th>Instance</th>
            <th>Address</th>
            <th>Health</th>
            {hasBreakers && <th>Breaker</th>}
            {hasLatency && <th>Latency p50 / p99</th>}
          </tr>
        </thead>
        <tbody>
          {services?.flatMap((service) =>
            service.instances.length === 0
              ? [
                  <tr key={service.name}>
                    <td>{service.name}</td>
                    <td colSpan={3 + (hasBreakers ? 1 : 0) + (hasLatency ? 1 : 0)} className="muted">
                      no instances known
                    </td>
                  </tr>,
                ]
              : service.instances.map((instance) => (
                  <tr key={`${service.name}/${instance.id}`} data-service={service.name}>
                    <td>{service.name}</td>
                    <td>{instance.id}</td>
                    <td>{instance.address}</td>
                    <td>
                      <span className={`health h${instance.status}`}>{HEALTH[instance.status]}</span>
                    </td>
                    {hasBreakers && <td>{instance.breakerState || "—"}</td>}
                    {hasLatency && <td>{instance.latencyP50Ms > 0 || instance.latencyP99Ms > 0 ? `${ms(instance.latencyP50Ms)} / ${ms(instance.latencyP99Ms)}` : "—"}</td>}
                  </tr>
                )),
          )}
        </tbody>
      </table>
    </section>
  );
}
