import { Box, Text } from 'ink';
import type { DashboardSnapshot } from './snapshot.js';

export function Header({ snapshot }: { snapshot: DashboardSnapshot }) {
  const { host, vms, selected, paused, guestShare } = snapshot;
  return (
    <Box flexDirection="column">
      <Text>
        <Text bold>kvmts</Text> {host.vendor} · {host.cpuModel} · module {host.module} · API {host.apiVersion} · pCPUs {host.pcpus}
        {' · '}guest {Math.round(guestShare * 100)}% of wall time{paused ? ' · ' : ''}
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
    </Box>
  );
}
