import type { Context } from 'aws-lambda';
import { ReprocessPlan } from './contract';
import { selectFiles, SelectInput } from './runtime/reprocess';
import { StepDeps, stepDepsFromEnv } from '../ledger/runtime/step';
import { startInvocation } from '../runtime/telemetry';

// Created once per container, on first use (the environment is read then).
let deps: StepDeps | undefined;

/**
 * SelectFiles (reprocessing): checks the request, selects the files from the ledger or the raw bucket and writes
 * the run's manifest to S3. Throws `InvalidReprocessRequest` (not retried) for a request it refuses.
 */
export async function handler(event: SelectInput, context?: Context): Promise<ReprocessPlan> {
  startInvocation(context, { run: typeof event?.run === 'string' ? event.run : undefined });
  return selectFiles(event, deps ??= stepDepsFromEnv());
}
