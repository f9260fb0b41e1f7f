/** `kvmts --once`: one kvm_stat-style table for scripts. */
import type { DashboardSnapshot } from './snapshot.js';

export function formatOnce(snapshot: DashboardSnapshot): string {
  const lines: string[] = [];
  for (const vm of snapshot.vms) {
    lines.push(`# VM ${vm.id} ${vm.name} on ${vm.vendor}: ${vm.state}${vm.ended ? `, ${vm.ended}` : ''}`);
    lines.push(`${'Event'.padEnd(34)}${'Total'.padStart(12)}${'CurAvg/s'.padStart(10)}`);
    for (const r of [...vm.exits].sort((a, b) => b.total - a.total || a.name.localeCompare(b.name))) {
      lines.push(`${((r.child ? '  ' : '') + r.name).padEnd(34)}${String(r.total).padStart(12)}${r.rate.toFixed(0).padStart(10)}`);
    }
  }
  return lines.join('\n') + '\n';
}
