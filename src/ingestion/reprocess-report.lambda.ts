import type { Context } from 'aws-lambda';
import { ReprocessPlan, ReprocessReportSummary } from './contract';
import { writeReport } from './runtime/reprocess';
import { StepDeps, stepDepsFromEnv } from '../ledger/runtime/step';
import { startInvocation } from '../runtime/telemetry';

// Created once per container, on first use (the environment is read then).
let deps: StepDeps | undefined;

/** WriteReport (reprocessing): gathers what each selected file ended as into the run's report, with counts by outcome. */
export async function handler(event: { plan: ReprocessPlan }, context?: Context): Promise<ReprocessReportSummary> {
  startInvocation(context, { run: typeof event?.plan?.runPrefix === 'string' ? event.plan.runPrefix : undefined });
  return writeReport(event, deps ??= stepDepsFromEnv());
}
