import * as vscode from 'vscode';

/**
 * Which weights slot of a training checkpoint ('model', 'ema', …) the user picked in the model
 * editor, per file, for this window. Without a pick every command reads the slot the model's own
 * tools read (the core decides); a pick applies to the structure, conversion and parity alike.
 */
const chosen = new Map<string, string>();
const changed = new vscode.EventEmitter<string>();

/** Fires with the file whose slot was picked. */
export const onDidChooseWeights = changed.event;

export function chosenWeights(file: string): string | undefined {
  return chosen.get(file);
}

export function chooseWeights(file: string, key: string): void {
  if (chosen.get(file) === key) return;
  chosen.set(file, key);
  changed.fire(file);
}
