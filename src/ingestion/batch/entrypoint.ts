import { startStep, stepDepsFromEnv, validateInput } from '../../ledger/runtime/step';
import { describeError, requiredEnv } from '../../runtime/handler';
import { flushMetrics, log } from '../../runtime/telemetry';
import { IngestionEnv } from '../contract';
import { processConfigFromEnv, processObject } from '../runtime/process-object';

/**
 * ProcessFile on AWS Batch (files above the Lambda threshold): the same code as the processor Lambda.
 * The job's input is `ONS_JOB_INPUT` (a ProcessInput as JSON); the result goes to the ledger item's
 * `result`, where the state machine reads it back. Exit status: 0 processed, duplicate or superseded, 2 file
 * refused (the job definition should not retry it), 1 anything else.
 */
export async function main(): Promise<number> {
  try {
    const raw: unknown = JSON.parse(requiredEnv(IngestionEnv.JOB_INPUT));
    startStep(raw);
    const input = validateInput(raw);
    const result = await processObject(input, { ...stepDepsFromEnv(), config: processConfigFromEnv() });
    log('INFO', 'job done', { status: result.status, source: input.source, contentHash: result.contentHash });
    return 0;
  } catch (error) {
    const described = describeError(error);
    log('ERROR', 'job failed', described);
    return described.errorType === 'FileRefused' ? 2 : 1;
  } finally {
    // RecordsProcessed and RecordsRejected (see processObject), on stdout like the log lines. Unlike in
    // Lambda, CloudWatch turns EMF into metrics only when it comes through the CloudWatch agent or
    // PutLogEvents with the `x-amzn-logs-format: json/emf` header; the awslogs driver sends neither, so
    // until the job ships its EMF that way, the Batch path's documents stay log lines (Logs Insights only).
    flushMetrics();
  }
}

if (require.main === module) {
  void main().then((code) => {
    process.exitCode = code;
  });
}
