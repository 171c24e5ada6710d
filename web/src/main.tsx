import { TransportProvider } from "@connectrpc/connect-query";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./app.js";
import { NotificationsProvider } from "./notifications.js";
import { transport } from "./transport.js";
import "./styles.css";

const queryClient = new QueryClient({
  defaultOptions: {
    // A refused call is shown, not silently retried: retries would hide a
    // rate limit or an expired session, and the gateway already retries
    // what is safe to retry.
    queries: { retry: false, refetchOnWindowFocus: false, staleTime: 2000 },
    mutations: { retry: false },
  },
});

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <TransportProvider transport={transport}>
      <QueryClientProvider client={queryClient}>
        <NotificationsProvider>
          <App />
        </NotificationsProvider>
      </QueryClientProvider>
    </TransportProvider>
  </StrictMode>,
);
