import * as path from 'node:path';
import { userMessage } from '../core/formats/errors';
import { OutputError } from '../core/writers/atomicFile';

/*
 * The text of the extension's toasts and the model editor's error notices. Pure, without `vscode`,
 * so the unit tests pin the words. A toast is cut off after a line or two: the file goes by its
 * base name and the reason comes right after it. The log (the RepLens output channel) keeps each
 * error's `message`, with the full path.
 */

/** A conversion failed: "RepLens: could not convert a.pth: the file is truncated: …". */
export function convertFailedText(input: string, e: unknown): string {
  // The extension asks before replacing an output, so "exists" means one appeared while this one was being written.
  // The writer's own words point to the CLI's --force, which the extension has no use for.
  const reason =
    e instanceof OutputError && e.code === 'exists'
      ? `${path.basename(e.file)} appeared while it was being written and was left as it is; convert again to replace it`
      : userMessage(e, input);
  return `RepLens: could not convert ${path.basename(input)}: ${reason}`;
}

/** The user cancelled a conversion. */
export function convertCancelledText(input: string): string {
  return `RepLens: conversion of ${path.basename(input)} cancelled; nothing was written.`;
}

/** Why the model editor could not read a file as a model, under the file's name and format: the reason alone. */
export function readErrorText(file: string, e: unknown): string {
  return userMessage(e, file);
}

/** The model editor could not look at a file at all (gone, unreadable): the page has only this line. */
export function openFailedText(file: string, e: unknown): string {
  return `Could not open ${path.basename(file)}: ${userMessage(e, file)}`;
}
