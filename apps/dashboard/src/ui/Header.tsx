import { Box, Text } from 'ink';
import type { DashboardSnapshot, VmSnapshot } from './snapshot.js';

/** What the UI costs: the guests' share of wall time, refreshes per second and Ink's time per frame. */
export function UiCost({ snapshot }: { snapshot: DashboardSnapshot }) {
  return (
    <Text dimColor>
      guest {Math.round(snapshot.guestShare * 100)}% · {snapshot.refreshRate}/s × {snapshot.renderMs.toFixed(1)} ms
    </Text>
  );
}

/** The selected VM's last migration (`v`): pre-copy rounds, pages sent, downtime. */
function MigrationLine({ vm }: { vm: VmSnapshot | undefined }) {
  const r = vm?.lastMigration;
  if (!vm || !r) return null;
  return (
    <Text>
      migrated {vm.migrations}× · last {r.from} → {r.to} · pre-copy {r.rounds} rounds · {r.pagesSent} pages sent · downtime {Math.round(r.downtimeUs)} µs
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
      <MigrationLine vm={vms[selected]} />
    </Box>
  );
}
