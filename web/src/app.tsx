import { Link, Route, Switch, useLocation } from "wouter";
import { useCart } from "./cart.js";
import { NotificationsPage, useLiveNotifications } from "./notifications.js";
import { CartPage } from "./pages/cart.js";
import { CatalogPage } from "./pages/catalog.js";
import { MeshPage } from "./pages/mesh.js";
import { OrderPage } from "./pages/order.js";
import { OrdersPage } from "./pages/orders.js";
import { SalesPage } from "./pages/sales.js";
import { SignInPage } from "./pages/sign-in.js";
import { sessionStore, useSession } from "./session.js";
import type { ReactNode } from "react";

function SignedIn({ children }: { children: ReactNode }) {
  const { session, expired } = useSession();
  if (session) return <>{children}</>;
  return (
    <section className="narrow">
      <div className="notice">{expired ? "Your session has expired. Please sign in again." : "Please sign in to see this page."}</div>
      <Link href="/signin">Sign in</Link> or <Link href="/signup">create an account</Link>.
    </section>
  );
}

export function App() {
  const { session } = useSession();
  const cart = useCart();
  const live = useLiveNotifications();
  const [location] = useLocation();
  const count = cart.reduce((sum, line) => sum + line.quantity, 0);
  const nav = (href: string, label: string) => (
    <Link href={href} className={location === href ? "active" : ""}>
      {label}
    </Link>
  );
  return (
    <>
      <header>
        <Link href="/" className="brand">
          Meshwork shop
        </Link>
        <nav>
          {nav("/", "Shop")}
          {nav("/cart", count > 0 ? `Cart (${count})` : "Cart")}
          {session && nav("/orders", "Orders")}
          {session && nav("/notifications", live.unread > 0 ? `Notifications (${live.unread})` : "Notifications")}
          {session && nav("/sales", "Sales")}
          {nav("/mesh", "Mesh")}
        </nav>
        <div className="who">
          {session ? (
            <>
              <span>{session.user.displayName || session.user.email}</span>{" "}
              <button type="button" className="link" onClick={() => sessionStore.signOut()}>
                Sign out
              </button>
            </>
          ) : (
            <>
              <Link href="/signin">Sign in</Link> · <Link href="/signup">Create account</Link>
            </>
          )}
        </div>
      </header>
      {live.arrived[0] && live.unread > 0 && location !== "/notifications" && (
        <div className="toast" role="status" aria-label="latest notification">
          <strong>{live.arrived[0].subject}</strong> {live.arrived[0].body}{" "}
          <button type="button" className="link" aria-label="Dismiss" onClick={live.markRead}>
            Dismiss
          </button>
        </div>
      )}
      <main>
        <Switch>
          <Route path="/">
            <CatalogPage />
          </Route>
          <Route path="/cart">
            <CartPage />
          </Route>
          <Route path="/signin">
            <SignInPage mode="sign-in" />
          </Route>
          <Route path="/signup">
            <SignInPage mode="sign-up" />
          </Route>
          <Route path="/orders">
            <SignedIn>
              <OrdersPage />
            </SignedIn>
          </Route>
          <Route path="/orders/:id">
            {(params) => (
              <SignedIn>
                <OrderPage orderId={params.id} />
              </SignedIn>
            )}
          </Route>
          <Route path="/notifications">
            <SignedIn>
              <NotificationsPage />
            </SignedIn>
          </Route>
          <Route path="/sales">
            <SignedIn>
              <SalesPage />
            </SignedIn>
          </Route>
          <Route path="/mesh">
            <MeshPage />
          </Route>
          <Route>
            <section>
              <h1>Not found</h1>
              <p>
                There is no page here. <Link href="/">Back to the shop</Link>
              </p>
            </section>
          </Route>
        </Switch>
      </main>
    </>
  );
}
