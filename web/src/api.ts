/**
 * How the web client talks to the gateway: the Connect protocol with JSON
 * (readable in the network panel, and what the consumer contract in
 * test/web/contract.test.ts pins down), the bearer token when signed in, and
 * a refused token reported so the page can say the session expired. No DOM
 * here, so the contract tests run this very code in Node.
 */
import { Code, ConnectError, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";

export interface ShopTransportOptions {
  /** The gateway's origin (the page's own in the browser). */
  readonly baseUrl: string;
  /** The access token to send, or undefined when signed out. */
  readonly token: () => string | undefined;
  /** Called when the gateway refused a token that was sent. */
  readonly onUnauthenticated?: () => void;
}

export function createShopTransport(options: ShopTransportOptions): Transport {
  const authenticate: Interceptor = (next) => async (request) => {
    const token = options.token();
    if (token !== undefined) request.header.set("authorization", `Bearer ${token}`);
    const refused = (error: unknown): void => {
      if (token !== undefined && error instanceof ConnectError && error.code === Code.Unauthenticated) options.onUnauthenticated?.();
    };
    try {
      const response = await next(request);
      if (!response.stream || token === undefined) return response;
      // A stream's refusal arrives while its messages are read, after next() returned.
      const messages = response.message;
      return {
        ...response,
        message: (async function* () {
          try {
            yield* messages;
          } catch (error) {
            refused(error);
            throw error;
          }
        })(),
      };
    } catch (error) {
      refused(error);
      throw error;
    }
  };
  return createConnectTransport({ baseUrl: options.baseUrl, useBinaryFormat: false, interceptors: [authenticate] });
}
