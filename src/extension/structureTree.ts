import * as path from 'node:path';
import * as vscode from 'vscode';
import { inspectFile } from '../core/inspect';
import { chosenWeights } from './weightsChoice';
import { blockDescription, branchLabel, formatCount, postBnLabel, sourceNote } from '../core/model/describe';
import { familyById } from '../core/model/families';
import type { Block, BranchRole, ModelStructure, Stage } from '../core/model/structure';
import { log } from './log';

export type Node =
  | { kind: 'message'; text: string; error: boolean }
  | { kind: 'model'; uri: vscode.Uri; structure: ModelStructure }
  | { kind: 'stage'; stage: Stage; parent: Node }
  | { kind: 'block'; block: Block; parent: Node }
  | { kind: 'branch'; block: Block; role: BranchRole | 'deploy'; index: number; parent: Node }
  | { kind: 'postBn'; block: Block; parent: Node }
  | { kind: 'other'; names: string[]; parent: Node };

const ROLE_ORDER: readonly BranchRole[] = ['dense', 'oneByOne', 'identity', 'avgPool'];

/** The roles a block's tree shows: its family's usual three, and AvgPool where the block has it or says why not. */
function rolesShown(block: Block): BranchRole[] {
  const avgPool = block.branches.some((b) => b.role === 'avgPool') || (block.absent ?? []).some((a) => a.role === 'avgPool') || familyById(block.family).avgPool !== undefined;
  return ROLE_ORDER.filter((role) => role !== 'avgPool' || avgPool);
}

/** The "RepLens Structure" view: model → stages → blocks → branches for one model file. */
export class StructureTreeProvider implements vscode.TreeDataProvider<Node> {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  // Empty until a model is shown, so the view's welcome text explains what to do.
  private root: Node[] = [];
  private shown: string | undefined;
  private loading = 0;
  /** Children are made once per node, so that the same objects come back for reveal() and selection. */
  private readonly children = new WeakMap<Node, Node[]>();
  private blocks = new Map<string, Node>();

  /** The tree node of a block of the model shown now, to reveal it. */
  blockNode(name: string): Node | undefined {
    return this.blocks.get(name);
  }

  /** The model file shown now. */
  get shownUri(): vscode.Uri | undefined {
    return this.shown ? vscode.Uri.parse(this.shown) : undefined;
  }

  /** Shows `uri`; a newer call wins over one still loading. */
  async show(uri: vscode.Uri): Promise<void> {
    if (this.shown === uri.toString()) return;
    this.shown = uri.toString();
    const ticket = ++this.loading;
    this.setRoot([{ kind: 'message', text: `Reading ${path.basename(uri.fsPath)}…`, error: false }]);
    try {
      const started = Date.now();
      const { structure } = await inspectFile(uri.fsPath, { weights: chosenWeights(uri.fsPath) });
      log().info(`Structure of ${uri.fsPath} in ${Date.now() - started} ms: ${structure.stages.length} stages, family ${structure.family}`);
      if (ticket === this.loading) this.setRoot([{ kind: 'model', uri, structure }]);
    } catch (e) {
      const text = e instanceof Error ? e.message : String(e);
      log().error(text);
      if (ticket === this.loading) this.setRoot([{ kind: 'message', text, error: true }]);
    }
  }

  /** Forget the cached file so the next show() reads it again (after it changed on disk). */
  invalidate(uri: vscode.Uri): void {
    if (this.shown === uri.toString()) {
      this.shown = undefined;
      void this.show(uri);
    }
  }

  private setRoot(nodes: Node[]): void {
    this.root = nodes;
    this.blocks = new Map();
    for (const model of nodes) {
      for (const stage of this.getChildren(model)) {
        for (const block of this.getChildren(stage)) if (block.kind === 'block') this.blocks.set(block.block.name, block);
      }
    }
    this.changed.fire();
  }

  getParent(node: Node): Node | undefined {
    return 'parent' in node ? node.parent : undefined;
  }

  getChildren(node?: Node): Node[] {
    if (!node) return this.root;
    let made = this.children.get(node);
    if (!made) this.children.set(node, (made = this.makeChildren(node)));
    return made;
  }

  private makeChildren(node: Node): Node[] {
    switch (node.kind) {
      case 'model': {
        const stages: Node[] = node.structure.stages.map((stage) => ({ kind: 'stage', stage, parent: node }));
        if (node.structure.other.length) stages.push({ kind: 'other', names: node.structure.other, parent: node });
        if (node.structure.stages.length === 0) stages.unshift({ kind: 'message', text: 'No re-parameterizable blocks found', error: false });
        return stages;
      }
      case 'stage':
        return node.stage.blocks.map((block) => ({ kind: 'block', block, parent: node }));
      case 'block': {
        const postBn: Node[] = node.block.postBn ? [{ kind: 'postBn', block: node.block, parent: node }] : [];
        if (node.block.form === 'deploy') return [{ kind: 'branch', block: node.block, role: 'deploy', index: 0, parent: node }, ...postBn];
        const branches = rolesShown(node.block).flatMap((role) => {
          const count = node.block.branches.filter((b) => b.role === role).length;
          return Array.from({ length: Math.max(count, 1) }, (_, index): Node => ({ kind: 'branch', block: node.block, role, index, parent: node }));
        });
        return [...branches, ...postBn];
      }
      default:
        return [];
    }
  }

  getTreeItem(node: Node): vscode.TreeItem {
    const None = vscode.TreeItemCollapsibleState.None;
    switch (node.kind) {
      case 'message': {
        const item = new vscode.TreeItem(node.text, None);
        item.iconPath = new vscode.ThemeIcon(node.error ? 'error' : 'info');
        item.tooltip = node.text;
        return item;
      }
      case 'model': {
        const s = node.structure;
        const item = new vscode.TreeItem(path.basename(node.uri.fsPath), vscode.TreeItemCollapsibleState.Expanded);
        item.description = `${s.architecture} · ${s.family} · ${s.form}`;
        item.tooltip = new vscode.MarkdownString(
          `**${path.basename(node.uri.fsPath)}**\n\nformat \`${s.format}\`, family \`${s.family}\`, architecture **${s.architecture}**, form **${s.form}**\n\n` +
            `parameters ${formatCount(s.params.total)} → ${formatCount(s.params.afterFusion)} after fusion` +
            (s.warnings.length ? `\n\n$(warning) ${s.warnings.length} warning(s)` : ''),
          true,
        );
        item.iconPath = new vscode.ThemeIcon(s.warnings.length ? 'warning' : 'symbol-structure');
        item.resourceUri = node.uri;
        item.contextValue = 'replens.model';
        return item;
      }
      case 'stage': {
        const item = new vscode.TreeItem(node.stage.name, vscode.TreeItemCollapsibleState.Collapsed);
        const n = node.stage.blocks.length;
        item.description = `${n} block${n === 1 ? '' : 's'}`;
        item.iconPath = new vscode.ThemeIcon('layers');
        if (node.stage.blocks.some((b) => b.warnings.length)) item.iconPath = new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground'));
        return item;
      }
      case 'block':
        return blockItem(node.block);
      case 'branch':
        return branchItem(node.block, node.role, node.index);
      case 'postBn':
        return postBnItem(node.block);
      case 'other': {
        const item = new vscode.TreeItem('other tensors', None);
        item.description = `${node.names.length} (kept unchanged)`;
        item.tooltip = node.names.slice(0, 40).join('\n') + (node.names.length > 40 ? `\n… ${node.names.length - 40} more` : '');
        item.iconPath = new vscode.ThemeIcon('symbol-array');
        return item;
      }
    }
  }
}

function blockItem(block: Block): vscode.TreeItem {
  const item = new vscode.TreeItem(block.name, vscode.TreeItemCollapsibleState.Collapsed);
  item.description = blockDescription(block);
  item.id = `block:${block.name}`;
  const lines = [
    `**${block.name}** — ${block.form} form (${block.family})`,
    '',
    `channels ${block.inChannels} → ${block.outChannels}, kernel ${block.kernel}×${block.kernel}, groups ${block.groups} (${sourceNote(block.groupsSource)})`,
    '',
    `stride ${block.stride ?? '?'} (${sourceNote(block.strideSource)}), padding ${block.padding}, dilation ${block.dilation}`,
    '',
    `parameters ${formatCount(block.params.train)} → ${formatCount(block.params.deploy)} after fusion`,
  ];
  for (const w of block.warnings) lines.push('', `$(warning) ${w}`);
  item.tooltip = new vscode.MarkdownString(lines.join('\n'), true);
  item.iconPath = block.warnings.length
    ? new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground'))
    : new vscode.ThemeIcon(block.form === 'deploy' ? 'symbol-constant' : 'symbol-module');
  item.contextValue = 'replens.block';
  return item;
}

function branchItem(block: Block, role: BranchRole | 'deploy', index: number): vscode.TreeItem {
  if (role === 'deploy') {
    const item = new vscode.TreeItem(`fused ${block.kernel}×${block.kernel} conv + bias`, vscode.TreeItemCollapsibleState.None);
    item.description = `[${block.deploy?.weightShape.join(', ')}]`;
    item.iconPath = new vscode.ThemeIcon('pass-filled');
    return item;
  }
  const branch = block.branches.filter((b) => b.role === role)[index];
  const names: Record<BranchRole, string> = { dense: `${block.kernel}×${block.kernel} conv + BN`, oneByOne: '1×1 conv + BN', identity: 'identity (BN)', avgPool: 'AvgPool' };
  const family = familyById(block.family);
  if (family.oneByOne.bn === undefined) names.oneByOne = '1×1 conv (no BN)';
  if (family.identityWithoutBn) names.identity = 'identity (no BN)';
  if (!branch) {
    const item = new vscode.TreeItem(names[role], vscode.TreeItemCollapsibleState.None);
    const reason = block.absent?.find((a) => a.role === role)?.reason;
    item.description = reason ? `absent: ${reason}` : role === 'identity' ? 'absent (in ≠ out or stride ≠ 1)' : 'absent';
    item.tooltip = item.description;
    item.iconPath = new vscode.ThemeIcon('circle-slash', new vscode.ThemeColor('disabledForeground'));
    return item;
  }
  const item = new vscode.TreeItem(branchLabel(branch), vscode.TreeItemCollapsibleState.None);
  const presence = branch.presence === 'inferred' ? 'inferred: a state dict cannot show it; in == out at stride 1' : branch.presence === 'module' ? 'in the pickled module' : undefined;
  item.description = branch.weightShape ? `[${branch.weightShape.join(', ')}]` : branch.bn ? `BN ${block.inChannels}` : presence ?? `${block.inChannels} channels`;
  const bnText = branch.bn
    ? `BN eps ${branch.bn.eps} (${branch.bn.epsSource === 'attribute' ? 'stored in the file' : 'family default'})`
    : branch.withoutBn ? (branch.convWeight ? 'no BN: the conv is summed as it is' : 'no BN: no tensors') : 'no BN';
  item.tooltip = [branch.module, bnText, ...(presence ? [presence] : [])].join('\n');
  // An inferred branch is a guess, like an inferred stride: it gets the neutral icon.
  item.iconPath = branch.presence === 'inferred' ? new vscode.ThemeIcon('question') : new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed'));
  return item;
}

function postBnItem(block: Block): vscode.TreeItem {
  const bn = block.postBn!;
  const item = new vscode.TreeItem('BN after the sum', vscode.TreeItemCollapsibleState.None);
  item.description = `BN ${block.outChannels} · ${block.form === 'deploy' ? 'kept' : 'folded last'}`;
  item.tooltip = [bn.weight.replace(/\.weight$/, ''), postBnLabel(block), `BN eps ${bn.eps} (${bn.epsSource === 'attribute' ? 'stored in the file' : 'family default'})`].join('\n');
  item.iconPath = new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed'));
  return item;
}
