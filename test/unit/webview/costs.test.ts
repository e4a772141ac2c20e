import { describe, expect, it } from 'vitest';
import { costCards } from '../../../webview/reportModel/costs';

const form = (latencyMs: number | null, params: number, macs: number, nodes: number, fileBytes: number | null) => ({
  latencyMs,
  params,
  macs,
  nodes,
  fileBytes,
});

describe('cost cards', () => {
  it('shows each count before and after with the change and whether it improved', () => {
    const cards = costCards({ train: form(14.2, 8_309_000, 1_520_000_000, 170, 33_300_000), deploy: form(7.1, 8_300_000, 1_360_000_000, 50, 33_200_000) });
    expect(cards.map((c) => c.label)).toEqual(['Parameters', 'MACs', 'Graph nodes', 'Latency (median)', 'File size']);
    expect(cards[0]).toMatchObject({ before: '8.31 M', after: '8.30 M', change: '−0.1\u00a0%', improved: true, title: '8,309,000 → 8,300,000' });
    expect(cards[2]).toMatchObject({ before: '170', after: '50', change: '−71\u00a0%' });
    expect(cards[3]).toMatchObject({ before: '14.2\u00a0ms', after: '7.10\u00a0ms', change: '2.00× faster', improved: true });
    expect(cards[4].after).toBe('31.7 MiB');
  });

  it('says slower when the deploy form is, and dashes what was not measured', () => {
    const cards = costCards({ train: form(5, 10, 10, 10, null), deploy: form(10, 10, 10, 10, 100) });
    expect(cards[3]).toMatchObject({ change: '2.00× slower', improved: false });
    expect(cards[0]).toMatchObject({ change: '±0\u00a0%', improved: null });
    expect(cards[4]).toMatchObject({ before: '–', change: '–', improved: null });
    // Equal to the shown precision: neither faster nor slower.
    expect(costCards({ train: form(2.5, 1, 1, 1, null), deploy: form(2.504, 1, 1, 1, null) })[3]).toMatchObject({ change: 'the same' });
    expect(costCards({ train: form(2.504, 1, 1, 1, null), deploy: form(2.5, 1, 1, 1, null) })[3]).toMatchObject({ change: 'the same' });
    const none = costCards({ train: form(null, 1, 1, 1, null), deploy: form(null, 1, 1, 1, null) });
    expect(none[3]).toMatchObject({ before: '–', after: '–', change: '–', improved: null });
  });
});
