/** Subscribes a component to the model: a fresh snapshot at most every REFRESH_MS, and at once after a key. */
import { useEffect, useState } from 'react';
import type { DashboardModel } from './dashboard-model.js';
import type { DashboardSnapshot } from './snapshot.js';

export const REFRESH_MS = 100;

export function useDashboard(model: DashboardModel): DashboardSnapshot {
  const [snapshot, setSnapshot] = useState(() => model.snapshot());
  useEffect(() => {
    let last = 0;
    let trailing: NodeJS.Timeout | null = null;
    const refresh = () => {
      last = Date.now();
      trailing = null;
      setSnapshot(model.snapshot());
    };
    const unsubscribe = model.subscribe(() => {
      if (Date.now() - last >= REFRESH_MS) refresh();
      else trailing ??= setTimeout(refresh, REFRESH_MS - (Date.now() - last));
    });
    // Rates decay to 0 when nothing runs, so refresh on a timer too.
    const tick = setInterval(refresh, REFRESH_MS * 5);
    return () => { unsubscribe(); clearInterval(tick); if (trailing) clearTimeout(trailing); };
  }, [model]);
  return snapshot;
}
