import type { Context } from 'aws-lambda';
import { FileCheck } from './contract';
import { checkFile, recordOutcome, RecordInput } from './runtime/reprocess';
import { StepDeps, stepDepsFromEnv } from '../ledger/runtime/step';
import { startInvocation } from '../runtime/telemetry';

// Created once per container, on first use (the environment is read then).
let deps: StepDeps | undefined;

export type ReprocessFileEvent = ({ action: 'check'; force?: boolean } & Pick<RecordInput, 'item'>) | ({ action: 'record'; state: RecordInput });

/**
 * One file of a reprocessing run: `check` restores an archived raw object and says when it is readable;
 * `record` writes what the file ended as (a row of the run's report).
 */
export async function handler(event: ReprocessFileEvent, context?: Context): Promise<FileCheck | { outcome: string }> {
  const item = event?.action === 'record' ? event.state?.item : event?.item;
  startInvocation(context, { objectKey: typeof item?.key === 'string' ? item.key : undefined });
  deps ??= stepDepsFromEnv();
  if (event?.action === 'check') return checkFile(event.item, deps, event.force === true);
  if (event?.action === 'record') return recordOutcome(event.state, deps);
  throw new TypeError(`input.action must be 'check' or 'record', got ${JSON.stringify((event as { action?: unknown })?.action)}`);
}
