import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';
import { ExitsView } from './ExitsView.js';
import { VM } from '../../test/snapshots.js';

const rows = VM.exits;
const names = (frame: string) => frame.split('\n').slice(2).map((l) => l.trim().split(/\s+/)[0]);

describe('ExitsView', () => {
  it('lists events kvm_stat style, by total, children indented under the counters', () => {
    const { lastFrame } = render(<ExitsView rows={rows} sort="total" filter="" children />);
    expect(lastFrame()).toMatchInlineSnapshot(`
      "sort by total · child events shown
      Event                                    Total  %Total  CurAvg/s
      exits                                     1500    50.0       300
        exit.IO_INSTRUCTION                     1200               250
        exit.HLT                                 300                50
      io_exits                                  1200    40.0       250
      halt_exits                                 300    10.0        50"
    `);
  });

  it('sorts by rate', () => {
    const slow = [{ name: 'a', total: 10, rate: 1, child: false }, { name: 'b', total: 5, rate: 9, child: false }];
    expect(names(render(<ExitsView rows={slow} sort="total" filter="" children />).lastFrame()!)).toEqual(['a', 'b']);
    expect(names(render(<ExitsView rows={slow} sort="rate" filter="" children />).lastFrame()!)).toEqual(['b', 'a']);
  });

  it('filters by a regular expression, and hides child events', () => {
    expect(names(render(<ExitsView rows={rows} sort="total" filter="^exit\." children />).lastFrame()!)).toEqual(['exit.IO_INSTRUCTION', 'exit.HLT']);
    expect(names(render(<ExitsView rows={rows} sort="total" filter="" children={false} />).lastFrame()!)).toEqual(['exits', 'io_exits', 'halt_exits']);
  });

  it('leaves out events that never happened, as kvm_stat does', () => {
    const withZero = [...rows, { name: 'hypercalls', total: 0, rate: 0, child: false }];
    expect(names(render(<ExitsView rows={withZero} sort="total" filter="" children={false} />).lastFrame()!)).toEqual(['exits', 'io_exits', 'halt_exits']);
  });

  it('takes a broken regular expression as plain text', () => {
    expect(names(render(<ExitsView rows={rows} sort="total" filter="HLT(" children />).lastFrame()!)).toEqual(['(no']);
    expect(names(render(<ExitsView rows={rows} sort="total" filter="io_" children />).lastFrame()!)).toEqual(['io_exits']);
  });
});
