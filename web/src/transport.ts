import { createShopTransport } from "./api.js";
import { sessionStore } from "./session.js";

/** The gateway that served this page: same origin, so no CORS is involved. */
export const transport = createShopTransport({
  baseUrl: window.location.origin,
  token: () => sessionStore.token(),
  onUnauthenticated: () => sessionStore.expire(),
});
