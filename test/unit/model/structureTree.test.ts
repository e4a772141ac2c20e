import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { qarepvggBlock, Synth, tree, writeModuleCheckpoint, writeStateDict, type BlockSpec, type PyModule } from './synthetic';

/** Just enough of the VS Code API for the structure tree: items are plain records. */
const vscode = vi.hoisted(() => {
  class TreeItem {
    description?: string;
    tooltip?: unknown;
    iconPath?: unknown;
    id?: string;
    contextValue?: string;
    resourceUri?: unknown;
    constructor(
      readonly label: string,
      readonly collapsibleState: number,
    ) {}
  }
  class ThemeIcon {
    constructor(
      readonly id: string,
      readonly color?: unknown,
    ) {}
  }
  class ThemeColor {
    constructor(readonly id: string) {}
  }
  class MarkdownString {
    constructor(readonly value: string) {}
  }
  class EventEmitter {
    event = () => ({ dispose: () => undefined });
    fire() {}
  }
  class Uri {
    constructor(readonly fsPath: string) {}
    static file(fsPath: string) {
      return new Uri(fsPath);
    }
    static parse(s: string) {
      return new Uri(s);
    }
    toString() {
      return `file://${this.fsPath}`;
    }
  }
  return {
    TreeItem,
    ThemeIcon,
    ThemeColor,
    MarkdownString,
    EventEmitter,
    Uri,
    TreeItemCollapsibleState: { None: 0, Collapsed: 1, Expanded: 2 },
    window: { createOutputChannel: () => ({ info: () => undefined, warn: () => undefined, error: () => undefined }) },
  };
});
vi.mock('vscode', () => vscode);

const { StructureTreeProvider } = await import('../../../src/extension/structureTree');
type Provider = InstanceType<typeof StructureTreeProvider>;
type Item = InstanceType<typeof vscode.TreeItem>;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'replens-tree-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const STACK: BlockSpec[] = [
  { name: 'blocks.0', cin: 8, cout: 16, stride: 2 },
  { name: 'blocks.1', cin: 16, cout: 16, stride: 1 },
];

async function rowsOf(file: string, block: string): Promise<{ label: string; description?: string }[]> {
  const provider: Provider = new StructureTreeProvider();
  await provider.show(vscode.Uri.file(file) as never);
  const node = provider.blockNode(block);
  expect(node, `block ${block} in the tree`).toBeDefined();
  return provider.getChildren(node).map((n) => {
    const item = provider.getTreeItem(n) as unknown as Item;
    return { label: item.label, description: item.description };
  });
}

describe('the structure tree shows the new kinds of branch', () => {
  it('QARepVGGBlockV2 from a pickled model: bare 1×1, bare identity, AvgPool, the BN after the sum; absent ones with the reason', async () => {
    const s = new Synth(61);
    const root = tree(
      '__main__.Stack',
      STACK.map((b) => [b.name, qarepvggBlock(s, b, 'v2')] as [string, PyModule]),
    );
    const file = await writeModuleCheckpoint(path.join(dir, 'v2.pt'), root);
    expect(await rowsOf(file, 'blocks.1')).toEqual([
      { label: '3×3 conv + BN', description: '[16, 16, 3, 3]' },
      { label: '1×1 conv (no BN)', description: '[16, 16, 1, 1]' },
      { label: 'identity (no BN)', description: 'in the pickled module' },
      { label: '3×3 AvgPool (zero padding counted)', description: 'in the pickled module' },
      { label: 'BN after the sum', description: 'BN 16 · folded last' },
    ]);
    expect(await rowsOf(file, 'blocks.0')).toEqual([
      { label: '3×3 conv + BN', description: '[16, 8, 3, 3]' },
      { label: '1×1 conv (no BN)', description: '[16, 8, 1, 1]' },
      { label: 'identity (no BN)', description: 'absent: in 8 ≠ out 16' },
      { label: 'AvgPool', description: 'absent: in 8 ≠ out 16' },
      { label: 'BN after the sum', description: 'BN 16 · folded last' },
    ]);
  });

  it('QARepVGG from a state dict: the identity marked inferred, the AvgPool absent because v1 was assumed', async () => {
    const s = new Synth(62);
    for (const b of STACK) qarepvggBlock(s, b, 'v1');
    const file = await writeStateDict(path.join(dir, 'v1.pth'), s.tensors);
    const rows = await rowsOf(file, 'blocks.1');
    expect(rows.map((r) => r.label)).toEqual(['3×3 conv + BN', '1×1 conv (no BN)', 'identity (no BN, inferred)', 'AvgPool', 'BN after the sum']);
    expect(rows[2].description).toBe('inferred: a state dict cannot show it; in == out at stride 1');
    expect(rows[3].description).toMatch(/^absent: assumed QARepVGGBlock, which has none: a state dict cannot show QARepVGGBlockV2's tensorless AvgPool branch/);
  });

  it('a QARepVGG deploy block: the fused conv and the BN it keeps', async () => {
    const s = new Synth(63);
    s.bn('blocks.0.bn', 16);
    s.conv('blocks.0.rbr_reparam.weight', [16, 16, 3, 3]);
    s.vector('blocks.0.rbr_reparam.bias', 16, -1, 1);
    const file = await writeStateDict(path.join(dir, 'deploy.pth'), s.tensors);
    expect(await rowsOf(file, 'blocks.0')).toEqual([
      { label: 'fused 3×3 conv + bias', description: '[16, 16, 3, 3]' },
      { label: 'BN after the sum', description: 'BN 16 · kept' },
    ]);
  });
});

describe('Show Structure', () => {
  it('a second show() of the file being read waits for that read, so the model row is there to reveal', async () => {
    const s = new Synth(64);
    for (const b of STACK) qarepvggBlock(s, b, 'v1');
    const file = await writeStateDict(path.join(dir, 'again.pth'), s.tensors);
    const provider: Provider = new StructureTreeProvider();
    const uri = vscode.Uri.file(file) as never;
    const first = provider.show(uri);
    expect(provider.getChildren().map((n) => n.kind)).toEqual(['message']);
    await provider.show(uri);
    expect(provider.getChildren().map((n) => n.kind)).toEqual(['model']);
    await first;
  });

  it('branch rows carry a Markdown tooltip with the rule; the absent identity gives its reason', async () => {
    const s = new Synth(65);
    const root = tree(
      '__main__.Stack',
      STACK.map((b) => [b.name, qarepvggBlock(s, b, 'v2')] as [string, PyModule]),
    );
    const file = await writeModuleCheckpoint(path.join(dir, 'tooltips.pt'), root);
    const provider: Provider = new StructureTreeProvider();
    await provider.show(vscode.Uri.file(file) as never);
    const rows = provider.getChildren(provider.blockNode('blocks.0')).map((n) => provider.getTreeItem(n) as unknown as Item);
    const identity = rows.find((r) => r.label === 'identity (no BN)')!;
    expect(identity.tooltip).toBeInstanceOf(vscode.MarkdownString);
    const text = (identity.tooltip as InstanceType<typeof vscode.MarkdownString>).value;
    expect(text.split('\n\n')[0]).toBe('**identity (no BN)**: absent — in 8 ≠ out 16');
    expect(text).toContain('as read: rbr\\_identity is None in the pickled module');
    expect((identity.iconPath as InstanceType<typeof vscode.ThemeIcon>).id).toBe('circle-slash');
    for (const row of rows) expect(row.tooltip, row.label).toBeInstanceOf(vscode.MarkdownString);
  });
});
