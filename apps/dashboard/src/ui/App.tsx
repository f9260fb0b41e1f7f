import { Box, Text, useApp, useInput, useStdout } from 'ink';
import { useEffect, useRef, useState } from 'react';
import type { DashboardModel } from './dashboard-model.js';
import { ExitsView, type ExitSort } from './ExitsView.js';
import { Header, UiCost } from './Header.js';
import { HelpView } from './HelpView.js';
import { InspectorView } from './InspectorView.js';
import { MemoryView } from './MemoryView.js';
import { SerialView } from './SerialView.js';
import { useDashboard } from './use-dashboard.js';
import { VcpuView } from './VcpuView.js';

export const VIEWS = ['exits', 'vcpu', 'inspector', 'memory', 'serial'] as const;
export type View = (typeof VIEWS)[number];
const VIEW_TITLES: Record<View, string> = { exits: 'Exits', vcpu: 'vCPU', inspector: 'VMCS/VMCB', memory: 'Memory', serial: 'Serial' };

export function App({ model }: { model: DashboardModel }) {
  const snapshot = useDashboard(model);
  const { exit } = useApp();
  const [view, setView] = useState<View>('exits');
  const [help, setHelp] = useState(false);
  const [sort, setSort] = useState<ExitSort>('total');
  const [filter, setFilter] = useState('');
  // The filter being typed: a ref, since keys can arrive faster than renders.
  const editingRef = useRef<string | null>(null);
  const [editing, setEditingState] = useState<string | null>(null);
  const setEditing = (text: string | null) => { editingRef.current = text; setEditingState(text); };
  const [children, setChildren] = useState(true);
  const [page, setPage] = useState(0);
  useEffect(() => model.setFocus(view), [model, view]);
  // The frame must fit the terminal, or Ink redraws it from the top every time.
  const { stdout } = useStdout();
  const rows = stdout.rows || 40;
  const cols = stdout.columns || 100;
  const serialLines = rows >= 32 ? 4 : 2;
  const body = Math.max(6, rows - 5 - (serialLines + 3) - 1);

  useInput((input, key) => {
    const editing = editingRef.current;
    if (editing !== null) {
      if (key.return) { setFilter(editing); setEditing(null); }
      else if (key.escape) { setFilter(''); setEditing(null); }
      else if (key.backspace || key.delete) setEditing(editing.slice(0, -1));
      else setEditing(editing + input);
      return;
    }
    const n = Number(input);
    if (n >= 1 && n <= VIEWS.length) { setView(VIEWS[n - 1]!); setHelp(false); return; }
    switch (input) {
      case 'q': model.stop(); exit(); break;
      case 'p': model.togglePause(); break;
      case 'n': setView((v) => (v === 'exits' ? 'vcpu' : v)); model.nextExit(); break;
      case 'o': setSort((s) => (s === 'total' ? 'rate' : 'total')); break;
      case 'f': setEditing(''); break;
      case 'r': model.resetStats(); break;
      case 'g': model.selectNextVm(); break;
      case 'x': setChildren((c) => !c); break;
      case 'v': void model.swapVendor(); break;
      case 'h': case '?': setHelp((h) => !h); break;
      case '[': setPage((p) => Math.max(0, p - 1)); break;
      case ']': setPage((p) => p + 1); break;
    }
  });

  const vm = snapshot.vms[snapshot.selected]!;
  return (
    <Box flexDirection="column">
      <Header snapshot={snapshot} />
      <Text>
        {VIEWS.map((v, i) => (
          <Text key={v} inverse={v === view && !help}>{` ${i + 1} ${VIEW_TITLES[v]} `}</Text>
        ))}
        <Text dimColor>  h help · q quit · </Text>
        <UiCost snapshot={snapshot} />
      </Text>
      <Box marginTop={1} flexDirection="column">
        {help ? <HelpView />
          : view === 'exits' ? <ExitsView rows={vm.exits} sort={sort} filter={filter} children={children} maxRows={body - 2} />
          : view === 'vcpu' ? (vm.vcpu ? <VcpuView vcpu={vm.vcpu} state={vm.state} lastExit={vm.lastExit} /> : <Text dimColor>reading the vCPU…</Text>)
          : view === 'inspector' ? <InspectorView inspection={vm.inspection} height={body} width={cols} page={page} />
          : view === 'memory' ? <MemoryView memslots={vm.memslots} mmu={vm.mmu} tdp={vm.vendor === 'intel' ? 'EPT' : 'NPT'} />
          : <SerialView text={vm.serial} lines={body + serialLines} title={vm.name} />}
      </Box>
      {view !== 'serial' && !help ? <SerialView text={vm.serial} lines={serialLines} title={vm.name} /> : null}
      {editing !== null ? <Text>filter: /{editing}/</Text> : snapshot.message ? <Text color="yellow">{snapshot.message}</Text> : null}
    </Box>
  );
}
