import type { Context } from 'aws-lambda';
import { QuarantineInput } from './contract';
import { quarantineObject, QuarantineResult } from './runtime/quarantine';
import { startStep, StepDeps, stepDepsFromEnv, validateInput } from '../ledger/runtime/step';
import { flushMetrics } from '../runtime/telemetry';

// Created once per container, on first use (the environment is read then).
let deps: StepDeps | undefined;

/**
 * Quarantine: copies the raw object (never moved, deleted or changed) to the failed bucket under
 * `<prefix>YYYY/MM/DD/<original key>`, writes `<that key>.error.json` beside it and records the
 * object as quarantined. The report holds the error's type and message, never a stack trace.
 */
export async function handler(event: QuarantineInput, context?: Context): Promise<QuarantineResult> {
  startStep(event, context);
  try {
    const input: QuarantineInput = { ...event, ...validateInput(event) };
    return await quarantineObject(input, deps ??= stepDepsFromEnv());
  } finally {
    flushMetrics(); // FilesQuarantined
  }
}
