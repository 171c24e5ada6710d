import { useQuery } from "@connectrpc/connect-query";
import { OrderService, OrderStatus } from "@meshwork/contracts/shop/orders/v2/orders";
import { useState } from "react";
import { Link } from "wouter";
import { ErrorNotice } from "../error-notice.js";
import { formatDateTime, formatPrice } from "../format.js";

export function OrdersPage() {
  const [tokens, setTokens] = useState<string[]>([""]);
  const orders = useQuery(OrderService.method.listOrders, { pageSize: 10, pageToken: tokens[tokens.length - 1]! });
  return (
    <section>
      <h1>Your orders</h1>
      {orders.error && <ErrorNotice error={orders.error} onRetry={() => void orders.refetch()} />}
      {orders.data?.orders.length === 0 && (
        <p>
          No orders yet. <Link href="/">Browse the shop</Link>
        </p>
      )}
      <ul className="orders" aria-label="orders">
        {orders.data?.orders.map((order) => (
          <li key={order.id}>
            <Link href={`/orders/${order.id}`}>Order {order.id.slice(0, 8)}</Link> · {formatDateTime(order.createTime)} · {OrderStatus[order.status].toLowerCase()}
            {order.total ? ` · ${formatPrice(order.total)}` : ""}
            {order.reason ? ` · ${order.reason}` : ""}
          </li>
        ))}
      </ul>
      <nav className="pager" aria-label="pages">
        <button type="button" disabled={tokens.length === 1} onClick={() => setTokens(tokens.slice(0, -1))}>
          Newer
        </button>
        <button type="button" disabled={!orders.data?.nextPageToken} onClick={() => setTokens([...tokens, orders.data!.nextPageToken])}>
          Older
        </button>
      </nav>
    </section>
  );
}
