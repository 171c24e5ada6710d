import { useQuery } from "@connectrpc/connect-query";
import { SalesService } from "@meshwork/contracts/shop/orders/v2/sales";
import { ErrorNotice } from "../error-notice.js";
import { formatDateTime, formatPrice, formatTime } from "../format.js";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";

/** "14:00–15:00" for the hour starting at `hour`, in the browser's time zone. */
function hourSpan(hour: Timestamp | undefined): string {
  if (!hour) return "";
  const start = timestampDate(hour);
  const end = new Date(start.getTime() + 3_600_000);
  const time = (date: Date) => date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  return `${start.toLocaleDateString()} ${time(start)}–${time(end)}`;
}

/**
 * The last 24 hours of sales: units and revenue per product per hour, and
 * orders by final state. The numbers come from an asynchronous read model
 * (the sales view), so the page says how fresh they are and refreshes itself.
 */
export function SalesPage() {
  const report = useQuery(SalesService.method.getSalesReport, {}, { refetchInterval: 5000 });
  const data = report.data;
  const freshness = data?.freshness;
  return (
    <section>
      <h1>Sales</h1>
      <p className="muted">Last 24 hours{data ? ` (${formatDateTime(data.startTime)} to ${formatDateTime(data.endTime)})` : ""}.</p>
      {report.error && <ErrorNotice error={report.error} onRetry={() => void report.refetch()} />}
      {freshness && (
        <p className="notice" role="status" aria-label="freshness">
          These figures are updated a moment after each order ends, not at once.{" "}
          {freshness.lastEventTime ? `They include every order event up to ${formatTime(freshness.lastEventTime)}` : "No order has been counted yet"}
          {freshness.pendingEvents > 0n ? `; ${freshness.pendingEvents} newer events are still to be counted.` : "; nothing newer is waiting."} Read at {formatTime(freshness.readTime)}.{" "}
          <button type="button" className="link" onClick={() => void report.refetch()}>
            Refresh
          </button>
        </p>
      )}
      <h2>Orders by final state</h2>
      <table aria-label="orders by final state">
        <thead>
          <tr>
            <th>Confirmed</th>
            <th>Rejected</th>
            <th>Failed</th>
          </tr>
        </thead>
        <tbody>
          <tr>
            <td data-outcome="confirmed">{String(data?.outcomes?.confirmed ?? 0n)}</td>
            <td data-outcome="rejected">{String(data?.outcomes?.rejected ?? 0n)}</td>
            <td data-outcome="failed">{String(data?.outcomes?.failed ?? 0n)}</td>
          </tr>
        </tbody>
      </table>
      <h2>Sales per product per hour</h2>
      {data && data.products.length === 0 && <p>No confirmed orders in these hours.</p>}
      <table aria-label="sales per product per hour">
        <thead>
          <tr>
            <th>Hour</th>
            <th>Product</th>
            <th>Units</th>
            <th>Revenue</th>
          </tr>
        </thead>
        <tbody>
          {data?.products.map((row) => (
            <tr key={`${row.hour?.seconds}/${row.productId}/${row.revenue?.currencyCode}`} data-product={row.productId}>
              <td>{hourSpan(row.hour)}</td>
              <td>{row.productId}</td>
              <td>{String(row.units)}</td>
              <td>{formatPrice(row.revenue)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {data && data.hourlyOutcomes.length > 0 && (
        <>
          <h2>Final states per hour</h2>
          <table aria-label="final states per hour">
            <thead>
              <tr>
                <th>Hour</th>
                <th>Confirmed</th>
                <th>Rejected</th>
                <th>Failed</th>
              </tr>
            </thead>
            <tbody>
              {data.hourlyOutcomes.map((row) => (
                <tr key={String(row.hour?.seconds)}>
                  <td>{hourSpan(row.hour)}</td>
                  <td>{String(row.outcomes?.confirmed ?? 0n)}</td>
                  <td>{String(row.outcomes?.rejected ?? 0n)}</td>
                  <td>{String(row.outcomes?.failed ?? 0n)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
