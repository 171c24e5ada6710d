import { useQuery } from "@connectrpc/connect-query";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { DeliveryOption, OrderStatus, SagaStep, type Order } from "@meshwork/contracts/shop/orders/v2/orders";
import { useRef, useState } from "react";
import { orderClient } from "../clients.js";
import { ErrorNotice } from "../error-notice.js";
import { describeRejection } from "../errors.js";
import { formatPrice, formatTime } from "../format.js";
import { useLiveStream } from "../live.js";

const STEPS: Record<SagaStep, { label: string; kind: "ok" | "bad" | "undo" | "none" }> = {
  [SagaStep.UNSPECIFIED]: { label: "Unknown step", kind: "none" },
  [SagaStep.ORDER_PLACED]: { label: "Order placed", kind: "ok" },
  [SagaStep.STOCK_RESERVED]: { label: "Stock reserved", kind: "ok" },
  [SagaStep.STOCK_REFUSED]: { label: "Stock refused", kind: "bad" },
  [SagaStep.PAYMENT_AUTHORIZED]: { label: "Payment authorized", kind: "ok" },
  [SagaStep.PAYMENT_DECLINED]: { label: "Payment declined", kind: "bad" },
  [SagaStep.PAYMENT_VOIDED]: { label: "Payment voided (compensation)", kind: "undo" },
  [SagaStep.STOCK_RELEASED]: { label: "Stock released (compensation)", kind: "undo" },
  [SagaStep.ORDER_CONFIRMED]: { label: "Order confirmed", kind: "ok" },
  [SagaStep.ORDER_REJECTED]: { label: "Order rejected", kind: "bad" },
  [SagaStep.ORDER_FAILED]: { label: "Order failed", kind: "bad" },
};

const STATUS: Record<OrderStatus, string> = {
  [OrderStatus.UNSPECIFIED]: "Unknown",
  [OrderStatus.PENDING]: "In progress",
  [OrderStatus.CONFIRMED]: "Confirmed",
  [OrderStatus.REJECTED]: "Rejected",
  [OrderStatus.FAILED]: "Failed",
};

const DELIVERY: Record<DeliveryOption, string> = {
  // An order placed through the deprecated v1 API has none.
  [DeliveryOption.UNSPECIFIED]: "Not given",
  [DeliveryOption.STANDARD]: "Standard delivery",
  [DeliveryOption.EXPRESS]: "Express delivery",
};

const isFinal = (order: Order | undefined): boolean => order !== undefined && order.status !== OrderStatus.PENDING && order.status !== OrderStatus.UNSPECIFIED;

/** The saga as it happens: WatchOrder sends the order now and after every step, and ends once it is final. */
export function OrderPage({ orderId }: { orderId: string }) {
  const [order, setOrder] = useState<Order>();
  const [error, setError] = useState<unknown>();
  const latest = useRef<Order>(undefined);
  const state = useLiveStream(
    {
      open: (signal) => orderClient.watchOrder({ orderId }, { signal }),
      onMessage: (message) => {
        if (!message.order) return;
        setError(undefined);
        latest.current = message.order;
        setOrder(message.order);
      },
      // The stream ends once the order is final; ending before that is a reason to reconnect.
      done: () => isFinal(latest.current),
      onError: setError,
    },
    [orderId],
  );
  return (
    <section>
      <h1>Order {orderId.slice(0, 8)}</h1>
      {error !== undefined && <ErrorNotice error={error} />}
      {order === undefined && error === undefined && <p className="muted">Loading the order…</p>}
      {order && (
        <>
          <p>
            Status:{" "}
            <strong className={`status s${order.status}`} data-status={OrderStatus[order.status]}>
              {STATUS[order.status]}
            </strong>
            {order.status === OrderStatus.PENDING && (
              <span className="muted"> — {state === "live" ? "following live" : state === "reconnecting" ? "connection lost, reconnecting…" : "connecting…"}</span>
            )}
          </p>
          {(order.status === OrderStatus.REJECTED || order.status === OrderStatus.FAILED) && (
            <div className="notice error" role="alert">
              <strong>{describeRejection(order.reason)}</strong> <span>{order.reason ? `Reason: ${order.reason}.` : ""} Nothing was charged and the items were put back.</span>
            </div>
          )}
          {order.status === OrderStatus.CONFIRMED && (
            <div className="notice ok" role="status">
              <strong>Thank you, your order is confirmed.</strong> Total {formatPrice(order.total)}.
            </div>
          )}
          {order.shippingAddress && (
            <address aria-label="shipping address">
              {order.shippingAddress.recipientName}, {order.shippingAddress.line1}
              {order.shippingAddress.line2 ? `, ${order.shippingAddress.line2}` : ""}, {order.shippingAddress.postalCode} {order.shippingAddress.city}, {order.shippingAddress.countryCode} ·{" "}
              {DELIVERY[order.deliveryOption] ?? DELIVERY[DeliveryOption.UNSPECIFIED]}
            </address>
          )}
          <ol className="timeline" aria-label="order timeline">
            {order.history.map((event, index) => {
              const step = STEPS[event.step] ?? STEPS[SagaStep.UNSPECIFIED];
              return (
                // biome-ignore lint/suspicious/noArrayIndexKey: the timeline only grows at its end, so an entry keeps its index.
                <li key={index} className={step.kind}>
                  <span className="when">{formatTime(event.occurTime)}</span> <span className="what">{step.label}</span>
                  {event.detail && <span className="detail"> — {event.detail}</span>}
                </li>
              );
            })}
          </ol>
          <table className="lines">
            <thead>
              <tr>
                <th>Product</th>
                <th>Quantity</th>
                <th>Unit price</th>
              </tr>
            </thead>
            <tbody>
              {order.lines.map((line) => (
                <tr key={line.productId}>
                  <td>
                    <ProductName productId={line.productId} />
                  </td>
                  <td>{line.quantity}</td>
                  <td>{formatPrice(line.unitPrice)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}

/** The product's name from the catalog (the order keeps only its id); the id until it is known. */
function ProductName({ productId }: { productId: string }) {
  const product = useQuery(CatalogService.method.getProduct, { productId }, { staleTime: 60_000 });
  return <>{product.data?.product?.name ?? productId}</>;
}
