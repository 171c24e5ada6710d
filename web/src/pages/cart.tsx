import { useMutation } from "@connectrpc/connect-query";
import { OrderService } from "@meshwork/contracts/shop/orders/v1/orders";
import { useMemo, useState } from "react";
import { Link, useLocation } from "wouter";
import { cartStore, useCart } from "../cart.js";
import { ErrorNotice } from "../error-notice.js";
import { formatMoney } from "../format.js";
import { useSession } from "../session.js";

/** The simulated processor's documented test cards (services/payments). */
export const TEST_CARDS = [
  { token: "tok_visa", label: "Test card that is approved (tok_visa)" },
  { token: "tok_declined", label: "Test card that is declined (tok_declined)" },
  { token: "tok_insufficient_funds", label: "Test card with insufficient funds (tok_insufficient_funds)" },
] as const;

const newKey = (): string => `web-${crypto.randomUUID()}`;

export function CartPage() {
  const cart = useCart();
  const { session } = useSession();
  const [, navigate] = useLocation();
  const [card, setCard] = useState<string>(TEST_CARDS[0].token);
  // One key per cart-and-card: a double click, or a retry after a lost
  // answer, sends the same key and gets the same order back.
  const content = JSON.stringify([cart.map((l) => [l.productId, l.quantity]), card]);
  // A new key exactly when `content` changes (it is not read inside: it is the reason).
  // biome-ignore lint/correctness/useExhaustiveDependencies: see above.
  const idempotencyKey = useMemo(() => newKey(), [content]);
  const placeOrder = useMutation(OrderService.method.placeOrder, {
    onSuccess: ({ order }) => {
      cartStore.clear();
      if (order) navigate(`/orders/${order.id}`);
    },
  });

  if (cart.length === 0) {
    return (
      <section>
        <h1>Cart</h1>
        <p>
          Your cart is empty. <Link href="/">Browse the shop</Link>
        </p>
      </section>
    );
  }
  const currency = cart[0]!.currencyCode;
  const total = cart.reduce((sum, line) => sum + line.priceMinor * line.quantity, 0);

  const checkout = () => {
    if (placeOrder.isPending) return;
    placeOrder.mutate({ idempotencyKey, items: cart.map((line) => ({ productId: line.productId, quantity: line.quantity })), paymentMethod: { cardToken: card } });
  };

  return (
    <section>
      <h1>Cart</h1>
      <table className="lines">
        <thead>
          <tr>
            <th>Product</th>
            <th>Quantity</th>
            <th>Price</th>
          </tr>
        </thead>
        <tbody>
          {cart.map((line) => (
            <tr key={line.productId}>
              <td>{line.name}</td>
              <td>
                <input
                  type="number"
                  min={0}
                  max={1000}
                  aria-label={`Quantity of ${line.name}`}
                  value={line.quantity}
                  onChange={(e) => cartStore.setQuantity(line.productId, Math.max(0, Math.floor(Number(e.target.value) || 0)))}
                />
              </td>
              <td>{formatMoney(line.priceMinor * line.quantity, line.currencyCode)}</td>
            </tr>
          ))}
        </tbody>
        <tfoot>
          <tr>
            <th colSpan={2}>Total</th>
            <th>{formatMoney(total, currency)}</th>
          </tr>
        </tfoot>
      </table>
      <fieldset>
        <legend>Payment</legend>
        {TEST_CARDS.map((option) => (
          <label key={option.token} className="choice">
            <input type="radio" name="card" value={option.token} checked={card === option.token} onChange={() => setCard(option.token)} />
            {option.label}
          </label>
        ))}
      </fieldset>
      {placeOrder.error && <ErrorNotice error={placeOrder.error} context="checkout" />}
      {session ? (
        <button type="button" className="primary" onClick={checkout} disabled={placeOrder.isPending}>
          {placeOrder.isPending ? "Placing order…" : "Place order"}
        </button>
      ) : (
        <p>
          <Link href="/signin">Sign in</Link> to place your order.
        </p>
      )}
    </section>
  );
}
