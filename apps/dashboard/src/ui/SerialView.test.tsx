import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';
import { SerialView } from './SerialView.js';

describe('SerialView', () => {
  it('shows the last lines, control bytes as dots', () => {
    const frame = render(<SerialView text={'one\ntwo\nthr\x07e\nfour'} lines={3} title="demo" />).lastFrame()!;
    expect(frame).toMatchInlineSnapshot(`
      "┌──────────────────────────────────────────────────────────────────────────────────────────────────┐
      │ COM1 · demo                                                                                      │
      │ two                                                                                              │
      │ thr.e                                                                                            │
      │ four                                                                                             │
      └──────────────────────────────────────────────────────────────────────────────────────────────────┘"
    `);
  });
});
