/** Subscribes a component to the model: a fresh snapshot when the model has a frame due or a control acted. */
import { useEffect, useState } from 'react';
import type { DashboardModel } from './dashboard-model.js';
import type { DashboardSnapshot } from './snapshot.js';

/** While guests run, the model asks for frames (≥ 10/s); this timer covers a paused or ended scene. */
export const IDLE_REFRESH_MS = 250;

export function useDashboard(model: DashboardModel): DashboardSnapshot {
  const [snapshot, setSnapshot] = useState(() => model.snapshot());
  useEffect(() => {
    const refresh = () => setSnapshot(model.snapshot());
    const unsubscribe = model.subscribe(refresh);
    const tick = setInterval(refresh, IDLE_REFRESH_MS);
    return () => { unsubscribe(); clearInterval(tick); };
  }, [model]);
  return snapshot;
}
