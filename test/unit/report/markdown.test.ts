import { describe, expect, it } from 'vitest';
import { reportMarkdown } from '../../../src/core/report/markdown';
import { smallSample } from '../webview/sampleReport';

describe('the report as Markdown', () => {
  it('says how to load the deploy file RepLens wrote: what it is, how, and the Python lines in a fence', () => {
    const report = smallSample();
    const load = report.load!;
    const text = reportMarkdown(report);
    const section = ['## Loading the deploy file', '', `${load.what}.`, '', `${load.how}:`, '', '```python', ...load.code, '```', ''].join('\n');
    expect(text).toContain(section);
    // Below the verdict, before the numbers.
    expect(text.indexOf(section)).toBeLessThan(text.indexOf('## Forms'));
  });

  it('has no such section when no file was written', () => {
    const { load: _load, ...report } = smallSample();
    expect(reportMarkdown({ ...report, output: null })).not.toContain('Loading the deploy file');
  });

  it('a backtick run in a line (a file name) cannot close the fence', () => {
    const report = smallSample();
    report.load!.code = ["model = torch.load('/tmp/a```b.pth')"];
    expect(reportMarkdown(report)).toContain("````python\nmodel = torch.load('/tmp/a```b.pth')\n````\n");
  });
});
