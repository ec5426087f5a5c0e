import type { Context } from 'aws-lambda';
import { RouteResult } from './contract';
import { routeObject } from './runtime/route';
import { StepInput } from '../ledger/contract';
import { startStep, StepDeps, stepDepsFromEnv, validateInput } from '../ledger/runtime/step';

// Created once per container, on first use (the environment is read then).
let deps: StepDeps | undefined;

/**
 * Route: decides what happens to a new raw object, by extension and size, and records it in the
 * ledger as received. Unsupported files are routed to quarantine with a reason, not thrown.
 */
export async function handler(event: StepInput, context?: Context): Promise<RouteResult> {
  startStep(event, context);
  // S3 URL-encodes keys in EventBridge "Object Created" events as in its notifications (form style,
  // space = '+'), so a key taken from `$.detail.object.key` comes flagged `keyUrlEncoded`: decoded here.
  const input = validateInput(event);
  return routeObject(input, deps ??= stepDepsFromEnv());
}
