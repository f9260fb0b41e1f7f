import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';
import { HelpView, KEYS } from './HelpView.js';

describe('HelpView', () => {
  it('lists every key', () => {
    const frame = render(<HelpView />).lastFrame()!;
    for (const [key] of KEYS) expect(frame).toContain(key);
    expect(frame).toContain('n     run to the next exit and stop there');
  });
});
