import { useMutation } from "@connectrpc/connect-query";
import { DeliveryOption, OrderService } from "@meshwork/contracts/shop/orders/v2/orders";
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

/** The shipping form's fields, named as the contract's ShippingAddress (API v2 requires one). */
const ADDRESS_FIELDS = [
  { name: "recipientName", label: "Recipient", autoComplete: "name", required: true },
  { name: "line1", label: "Street and number", autoComplete: "address-line1", required: true },
  { name: "line2", label: "Flat, floor (optional)", autoComplete: "address-line2", required: false },
  { name: "postalCode", label: "Postal code", autoComplete: "postal-code", required: true },
  { name: "city", label: "City", autoComplete: "address-level2", required: true },
  { name: "countryCode", label: "Country code (e.g. DE)", autoComplete: "country", required: true },
] as const;

type AddressForm = Record<(typeof ADDRESS_FIELDS)[number]["name"], string>;
const EMPTY_ADDRESS: AddressForm = { recipientName: "", line1: "", line2: "", postalCode: "", city: "", countryCode: "" };

export function CartPage() {
  const cart = useCart();
  const { session } = useSession();
  const [, navigate] = useLocation();
  const [card, setCard] = useState<string>(TEST_CARDS[0].token);
  const [address, setAddress] = useState<AddressForm>(EMPTY_ADDRESS);
  const [delivery, setDelivery] = useState<DeliveryOption>(DeliveryOption.STANDARD);
  // One key per cart, card and destination: a double click, or a retry after
  // a lost answer, sends the same key and gets the same order back.
  const content = JSON.stringify([cart.map((l) => [l.productId, l.quantity]), card, address, delivery]);
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

  const checkout = (event: React.FormEvent) => {
    event.preventDefault();
    if (placeOrder.isPending) return;
    placeOrder.mutate({
      idempotencyKey,
      items: cart.map((line) => ({ productId: line.productId, quantity: line.quantity })),
      paymentMethod: { cardToken: card },
      // Checked by the service too (INVALID_ARGUMENT naming the field, shown by ErrorNotice).
      shippingAddress: { ...address, countryCode: address.countryCode.trim().toUpperCase() },
      deliveryOption: delivery,
    });
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
      <form onSubmit={checkout} aria-label="checkout">
        <fieldset>
          <legend>Shipping address</legend>
          {ADDRESS_FIELDS.map((field) => (
            <label key={field.name} className="field">
              {field.label}
              <input
                name={field.name}
                autoComplete={field.autoComplete}
                required={field.required}
                value={address[field.name]}
                onChange={(e) => setAddress({ ...address, [field.name]: e.target.value })}
              />
            </label>
          ))}
        </fieldset>
        <fieldset>
          <legend>Delivery</legend>
          {[
            { option: DeliveryOption.STANDARD, label: "Standard delivery" },
            { option: DeliveryOption.EXPRESS, label: "Express delivery (next day)" },
          ].map(({ option, label }) => (
            <label key={option} className="choice">
              <input type="radio" name="delivery" checked={delivery === option} onChange={() => setDelivery(option)} />
              {label}
            </label>
          ))}
        </fieldset>
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
          <button type="submit" className="primary" disabled={placeOrder.isPending}>
            {placeOrder.isPending ? "Placing order…" : "Place order"}
          </button>
        ) : (
          <p>
            <Link href="/signin">Sign in</Link> to place your order.
          </p>
        )}
      </form>
    </section>
  );
}
