/**
 * Live notifications for the signed-in user: one WatchNotifications stream
 * for the whole app, feeding the header's badge and the notifications page.
 */
import { useQuery } from "@connectrpc/connect-query";
import { NotificationService, type Notification } from "@meshwork/contracts/shop/notifications/v1/notifications";
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { Link } from "wouter";
import { notificationClient } from "./clients.js";
import { ErrorNotice } from "./error-notice.js";
import { formatDateTime } from "./format.js";
import { useLiveStream, type LiveState } from "./live.js";
import { useSession } from "./session.js";

interface LiveNotifications {
  readonly arrived: readonly Notification[];
  readonly unread: number;
  readonly state: LiveState;
  markRead(): void;
}

const Context = createContext<LiveNotifications>({ arrived: [], unread: 0, state: "ended", markRead: () => {} });

export function NotificationsProvider({ children }: { children: ReactNode }) {
  const { session } = useSession();
  const [arrived, setArrived] = useState<Notification[]>([]);
  const [unread, setUnread] = useState(0);
  const userId = session?.user.id;
  // Another account's notifications are never shown to the next one signing in here.
  // biome-ignore lint/correctness/useExhaustiveDependencies: the account changing is the trigger; its id is not read inside.
  useEffect(() => {
    setArrived([]);
    setUnread(0);
  }, [userId]);
  const state = useLiveStream(
    {
      enabled: userId !== undefined,
      open: (signal) => notificationClient.watchNotifications({}, { signal }),
      onMessage: ({ notification }) => {
        if (!notification) return;
        setArrived((list) => (list.some((n) => n.id === notification.id) ? list : [notification, ...list]));
        setUnread((n) => n + 1);
      },
      done: () => false,
    },
    [userId],
  );
  const markRead = useCallback(() => setUnread(0), []);
  const value = useMemo(() => ({ arrived: userId ? arrived : [], unread: userId ? unread : 0, state, markRead }), [arrived, unread, state, markRead, userId]);
  return <Context.Provider value={value}>{children}</Context.Provider>;
}

export const useLiveNotifications = (): LiveNotifications => useContext(Context);

export function NotificationsPage() {
  const live = useLiveNotifications();
  const history = useQuery(NotificationService.method.listNotifications, { pageSize: 50 });
  const merged = useMemo(() => {
    const seen = new Set<string>();
    return [...live.arrived, ...(history.data?.notifications ?? [])].filter((n) => {
      if (seen.has(n.id)) return false;
      seen.add(n.id);
      return true;
    });
  }, [live.arrived, history.data]);
  const { markRead } = live;
  // biome-ignore lint/correctness/useExhaustiveDependencies: each arrival while the page is open is read at once.
  useEffect(() => markRead(), [markRead, live.arrived.length]);
  return (
    <section>
      <h1>Notifications</h1>
      <p className="muted">Live: {live.state === "live" ? "connected" : live.state}</p>
      {history.error && <ErrorNotice error={history.error} />}
      {merged.length === 0 && !history.isPending && <p>No notifications yet. Place an order and they appear here as they happen.</p>}
      <ul className="notifications" aria-label="notifications">
        {merged.map((n) => (
          <li key={n.id}>
            <strong>{n.subject}</strong> <span className="muted">{formatDateTime(n.createTime)}</span>
            <div>{n.body}</div>
            {n.orderId && <Link href={`/orders/${n.orderId}`}>View order</Link>}
          </li>
        ))}
      </ul>
    </section>
  );
}
