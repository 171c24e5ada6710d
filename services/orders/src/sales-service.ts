import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { GetSalesReportResponseSchema, SalesService } from "@meshwork/contracts/shop/orders/v2/sales";
import { errorMapper, type AuthenticatedUser, type CallContext, type ServiceHandlers } from "@meshwork/platform";
import { checkSalesRange } from "./sales-report.js";
import type { SalesReport, SalesReportRange } from "./sales-view.js";

export interface SalesServiceDeps {
  readonly authenticate: (context: CallContext) => Promise<AuthenticatedUser>;
  /** Reads the sales view (sales-view.ts readSalesReport, bound to the database). */
  readonly readReport: (range: SalesReportRange) => Promise<SalesReport>;
  readonly now?: () => Date;
}

const mapped = errorMapper();

/** The contract's answer for a report of the sales view. */
export function salesReportMessage(report: SalesReport): MessageInitShape<typeof GetSalesReportResponseSchema> {
  const { freshness } = report;
  return {
    startTime: timestampFromDate(report.range.from),
    endTime: timestampFromDate(report.range.to),
    products: report.products.map((row) => ({
      hour: timestampFromDate(row.hour),
      productId: row.productId,
      units: BigInt(row.units),
      revenue: { currencyCode: row.currency, amountMinor: BigInt(row.revenueMinor) },
    })),
    hourlyOutcomes: report.outcomesByHour.map((row) => ({
      hour: timestampFromDate(row.hour),
      outcomes: { confirmed: BigInt(row.confirmed), rejected: BigInt(row.rejected), failed: BigInt(row.failed) },
    })),
    outcomes: { confirmed: BigInt(report.outcomes.confirmed), rejected: BigInt(report.outcomes.rejected), failed: BigInt(report.outcomes.failed) },
    freshness: {
      ...(freshness.lastEventAt ? { lastEventTime: timestampFromDate(freshness.lastEventAt) } : {}),
      ...(freshness.checkpointUpdatedAt ? { updateTime: timestampFromDate(freshness.checkpointUpdatedAt) } : {}),
      pendingEvents: BigInt(freshness.pendingEvents),
      readTime: timestampFromDate(freshness.readAt),
    },
  };
}

/**
 * shop.orders.v2.SalesService. Authorization: a signed-in caller. Access
 * tokens carry a user id and an e-mail address and no roles (identity issues
 * no other claims), so "staff only" cannot be told apart yet; the report is
 * totals only, with nothing about any user or order. When roles exist, this
 * is the one place to require one.
 */
export function createSalesHandlers(deps: SalesServiceDeps): ServiceHandlers<typeof SalesService> {
  const now = deps.now ?? (() => new Date());
  return {
    getSalesReport: (request, context) =>
      mapped(async () => {
        await deps.authenticate(context);
        const range = checkSalesRange(request.startTime, request.endTime, now());
        return salesReportMessage(await deps.readReport(range));
      }),
  };
}
