import * as path from 'node:path';
import * as vscode from 'vscode';
import { messageOf, userMessage } from '../core/formats/errors';
import { inspectFile } from '../core/inspect';
import { chosenWeights } from './weightsChoice';
import type { Block, BranchRole, ModelStructure, Stage } from '../core/model/structure';
import { log } from './log';
import { blockRow, branchRow, modelRow, postBnRow, rolesShown, stageRow, type BranchState, type RowText } from './structureText';

export type TreeRow =
  | { kind: 'message'; text: string; error: boolean }
  | { kind: 'model'; uri: vscode.Uri; structure: ModelStructure }
  | { kind: 'stage'; stage: Stage; parent: TreeRow }
  | { kind: 'block'; block: Block; parent: TreeRow }
  | { kind: 'branch'; block: Block; role: BranchRole | 'deploy'; index: number; parent: TreeRow }
  | { kind: 'postBn'; block: Block; parent: TreeRow }
  | { kind: 'other'; names: string[]; parent: TreeRow };

/** The "RepLens Structure" view: model → stages → blocks → branches for one model file. */
export class StructureTreeProvider implements vscode.TreeDataProvider<TreeRow> {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  // Empty until a model is shown, so the view's welcome text explains what to do.
  private root: TreeRow[] = [];
  private shown: string | undefined;
  private loading = 0;
  /** The read of the file shown now, so a second show() of it waits for the same read. */
  private pending: Promise<void> = Promise.resolve();
  /** Children are made once per node, so that the same objects come back for reveal() and selection. */
  private readonly children = new WeakMap<TreeRow, TreeRow[]>();
  private blocks = new Map<string, TreeRow>();

  /** The tree node of a block of the model shown now, to reveal it. */
  blockNode(name: string): TreeRow | undefined {
    return this.blocks.get(name);
  }

  /** The model file shown now. */
  get shownUri(): vscode.Uri | undefined {
    return this.shown ? vscode.Uri.parse(this.shown) : undefined;
  }

  /** Shows `uri`, resolving once its rows are there; a newer call wins over one still loading. */
  show(uri: vscode.Uri): Promise<void> {
    if (this.shown === uri.toString()) return this.pending;
    this.shown = uri.toString();
    const ticket = ++this.loading;
    this.pending = this.load(uri, ticket);
    return this.pending;
  }

  private async load(uri: vscode.Uri, ticket: number): Promise<void> {
    this.setRoot([{ kind: 'message', text: `Reading ${path.basename(uri.fsPath)}…`, error: false }]);
    try {
      const started = Date.now();
      const { structure } = await inspectFile(uri.fsPath, { weights: chosenWeights(uri.fsPath) });
      log().info(`Structure of ${uri.fsPath} in ${Date.now() - started} ms: ${structure.stages.length} stages, family ${structure.family}`);
      if (ticket === this.loading) this.setRoot([{ kind: 'model', uri, structure }]);
    } catch (e) {
      log().error(messageOf(e));
      if (ticket === this.loading) this.setRoot([{ kind: 'message', text: userMessage(e), error: true }]);
    }
  }

  /** Forget the cached file so the next show() reads it again (after it changed on disk). */
  invalidate(uri: vscode.Uri): void {
    if (this.shown === uri.toString()) {
      this.shown = undefined;
      void this.show(uri);
    }
  }

  private setRoot(nodes: TreeRow[]): void {
    this.root = nodes;
    this.blocks = new Map();
    for (const model of nodes) {
      for (const stage of this.getChildren(model)) {
        for (const block of this.getChildren(stage)) if (block.kind === 'block') this.blocks.set(block.block.name, block);
      }
    }
    this.changed.fire();
  }

  getParent(node: TreeRow): TreeRow | undefined {
    return 'parent' in node ? node.parent : undefined;
  }

  getChildren(node?: TreeRow): TreeRow[] {
    if (!node) return this.root;
    let made = this.children.get(node);
    if (!made) this.children.set(node, (made = this.makeChildren(node)));
    return made;
  }

  private makeChildren(node: TreeRow): TreeRow[] {
    switch (node.kind) {
      case 'model': {
        const stages: TreeRow[] = node.structure.stages.map((stage) => ({ kind: 'stage', stage, parent: node }));
        if (node.structure.other.length) stages.push({ kind: 'other', names: node.structure.other, parent: node });
        if (node.structure.stages.length === 0) stages.unshift({ kind: 'message', text: 'No re-parameterizable blocks found', error: false });
        return stages;
      }
      case 'stage':
        return node.stage.blocks.map((block) => ({ kind: 'block', block, parent: node }));
      case 'block': {
        const postBn: TreeRow[] = node.block.postBn ? [{ kind: 'postBn', block: node.block, parent: node }] : [];
        if (node.block.form === 'deploy') return [{ kind: 'branch', block: node.block, role: 'deploy', index: 0, parent: node }, ...postBn];
        const branches = rolesShown(node.block).flatMap((role) => {
          const count = node.block.branches.filter((b) => b.role === role).length;
          return Array.from({ length: Math.max(count, 1) }, (_, index): TreeRow => ({ kind: 'branch', block: node.block, role, index, parent: node }));
        });
        return [...branches, ...postBn];
      }
      default:
        return [];
    }
  }

  getTreeItem(node: TreeRow): vscode.TreeItem {
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
        const item = treeItem(modelRow(s, path.basename(node.uri.fsPath)), vscode.TreeItemCollapsibleState.Expanded);
        item.iconPath = new vscode.ThemeIcon(s.warnings.length ? 'warning' : 'symbol-structure');
        item.resourceUri = node.uri;
        item.contextValue = 'replens.model';
        return item;
      }
      case 'stage': {
        const item = treeItem(stageRow(node.stage), vscode.TreeItemCollapsibleState.Collapsed);
        item.iconPath = node.stage.blocks.some((b) => b.warnings.length)
          ? new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground'))
          : new vscode.ThemeIcon('layers');
        return item;
      }
      case 'block':
        return blockItem(node.block);
      case 'branch': {
        const row = branchRow(node.block, node.role, node.index);
        const item = treeItem(row, None);
        item.iconPath = BRANCH_ICONS[row.state]();
        return item;
      }
      case 'postBn': {
        const item = treeItem(postBnRow(node.block), None);
        item.iconPath = new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed'));
        return item;
      }
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

/** A row's words as a TreeItem, its tooltip Markdown with theme icons. */
function treeItem(row: RowText, state: vscode.TreeItemCollapsibleState): vscode.TreeItem {
  const item = new vscode.TreeItem(row.label, state);
  item.description = row.description;
  item.tooltip = new vscode.MarkdownString(row.tooltip, true);
  return item;
}

const BRANCH_ICONS: Record<BranchState, () => vscode.ThemeIcon> = {
  present: () => new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed')),
  // An inferred branch is a guess, like an inferred stride: it gets the neutral icon.
  inferred: () => new vscode.ThemeIcon('question'),
  absent: () => new vscode.ThemeIcon('circle-slash', new vscode.ThemeColor('disabledForeground')),
  fused: () => new vscode.ThemeIcon('pass-filled'),
};

function blockItem(block: Block): vscode.TreeItem {
  const item = treeItem(blockRow(block), vscode.TreeItemCollapsibleState.Collapsed);
  item.id = `block:${block.name}`;
  item.iconPath = block.warnings.length
    ? new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground'))
    : new vscode.ThemeIcon(block.form === 'deploy' ? 'symbol-constant' : 'symbol-module');
  item.contextValue = 'replens.block';
  return item;
}
