import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';
import { Header, UiCost } from './Header.js';
import { snapshotWith } from '../../test/snapshots.js';

describe('Header', () => {
  it('shows the host, the module, the API version, the pCPUs and each VM with its state', () => {
    const { lastFrame } = render(<Header snapshot={snapshotWith({ guestShare: 0.876 })} />);
    expect(lastFrame()).toMatchInlineSnapshot(`
      "kvmts intel · kvmts Intel Core (VMX) · module kvm_intel · API 12 · pCPUs 2
      VMs:  0 demo [intel] running"
    `);
  });

  it('shows the UI cost: guest share, refreshes per second, render time', () => {
    expect(render(<UiCost snapshot={snapshotWith({ guestShare: 0.654, refreshRate: 12, renderMs: 9.04 })} />).lastFrame()).toBe('guest 65% · 12/s × 9.0 ms');
  });

  it('says PAUSED when paused, and shows how an ended VM ended', () => {
    const snap = snapshotWith({ paused: true });
    const ended = { ...snap, vms: [{ ...snap.vms[0]!, state: 'ended' as const, ended: 'debug_exit (code 3)' }] };
    const frame = render(<Header snapshot={ended} />).lastFrame()!;
    expect(frame).toContain('PAUSED');
    expect(frame).toContain('0 demo [intel] ended: debug_exit (code 3)');
  });

  it('shows the selected VM\'s last migration (v): vendors, pre-copy rounds, pages sent, downtime', () => {
    const snap = snapshotWith({});
    const host = { ...snap.host, vendor: 'amd' as const };
    const lastMigration = { from: 'intel' as const, to: 'amd' as const, rounds: 3, pagesSent: 412, downtimeUs: 2921.4, totalMs: 112.34 };
    const moved = { ...snap, host, vms: [{ ...snap.vms[0]!, vendor: 'amd' as const, migrations: 1, lastMigration }] };
    const frame = render(<Header snapshot={moved} />).lastFrame()!;
    expect(frame).toContain('kvmts amd ·');
    expect(frame).toContain('0 demo [amd] running');
    expect(frame).toContain('migrated 1× · last intel → amd · pre-copy 3 rounds · 412 pages sent · downtime 2921 µs');
  });
});
