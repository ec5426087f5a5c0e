import type { Context } from 'aws-lambda';
import { copyDocument, CopyDocumentResult } from './runtime/copy-document';
import { StepInput } from '../ledger/contract';
import { startStep, StepDeps, stepDepsFromEnv, validateInput } from '../ledger/runtime/step';

// Created once per container, on first use (the environment is read then).
let deps: StepDeps | undefined;

/**
 * CopyDocument: copies a document (PDF, DOCX...) from the raw bucket to the knowledge base's
 * documents prefix in the processed bucket, under its original key; the raw object stays.
 */
export async function handler(event: StepInput, context?: Context): Promise<CopyDocumentResult> {
  startStep(event, context);
  const input = validateInput(event);
  return copyDocument(input, deps ??= stepDepsFromEnv());
}
