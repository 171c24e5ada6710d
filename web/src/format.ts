import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { Money } from "@meshwork/contracts/shop/common/v1/money";

export function formatMoney(amountMinor: bigint | number, currencyCode: string): string {
  const amount = Number(amountMinor) / 100;
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency: currencyCode || "EUR" }).format(amount);
  } catch {
    return `${amount.toFixed(2)} ${currencyCode}`;
  }
}

export const formatPrice = (money: Money | undefined): string => (money ? formatMoney(money.amountMinor, money.currencyCode) : "—");

export const formatTime = (timestamp: Timestamp | undefined): string =>
  timestamp ? timestampDate(timestamp).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : "";

export const formatDateTime = (timestamp: Timestamp | undefined): string => (timestamp ? timestampDate(timestamp).toLocaleString() : "");
