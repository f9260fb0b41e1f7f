import { Box, Text } from 'ink';
import type { MigrationReport } from '@kvmts/vmm';
import type { DashboardSnapshot } from './snapshot.js';

/** What the UI costs: the guests' share of wall time, refreshes per second and Ink's time per frame. */
export function UiCost({ snapshot }: { snapshot: DashboardSnapshot }) {
  return (
    <Text dimColor>
      guest {Math.round(snapshot.guestShare * 100)}% · {snapshot.refreshRate}/s × {snapshot.renderMs.toFixed(1)} ms
    </Text>
  );
}

/** The selected VM's last migration (`v`): pre-copy rounds, pages sent, downtime. */
function MigrationLine({ count, last: r }: { count: number; last: MigrationReport | null }) {
  // Plain props only: React's development build logs prop diffs with JSON.stringify, and a
  // VmSnapshot holds BigInts (the vCPU view's registers).
  if (!r) return null;
  return (
    <Text>
      migrated {count}× · last {r.from} → {r.to} · pre-copy {r.rounds} rounds · {r.pagesSent} pages sent · downtime {Math.round(r.downtimeUs)} µs
    </Text>
  );
}

export function Header({ snapshot }: { snapshot: DashboardSnapshot }) {
  const { host, vms, selected, paused } = snapshot;
  return (
    <Box flexDirection="column">
      <Text>
        <Text bold>kvmts</Text> {host.vendor} · {host.cpuModel} · module {host.module} · API {host.apiVersion} · pCPUs {host.pcpus}
        {paused ? ' · ' : ''}
        {paused ? <Text color="yellow" bold>PAUSED</Text> : null}
      </Text>
      <Text>
        VMs:{' '}
        {vms.map((vm) => (
          <Text key={vm.id} inverse={vm.id === selected}>
            {` ${vm.id} ${vm.name} [${vm.vendor}] ${vm.state}${vm.ended ? `: ${vm.ended}` : ''} `}
          </Text>
        ))}
      </Text>
      <MigrationLine count={vms[selected]?.migrations ?? 0} last={vms[selected]?.lastMigration ?? null} />
    </Box>
  );
}
