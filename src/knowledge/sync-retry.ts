import { Duration } from 'aws-cdk-lib';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';

/**
 * Retries a `startIngestionJob` task while another job of the data source is running (Bedrock allows
 * one at a time): every 30 s, growing 1.5× up to 5 minutes, with jitter, about an hour in all.
 * Shared by the pipeline's sync after each file and the knowledge base's sync after deployment.
 * @internal
 */
export function retryWhileIngestionJobRuns(task: sfn.TaskStateBase): void {
  task.addRetry({
    errors: ['BedrockAgent.ConflictException'],
    interval: Duration.seconds(30),
    backoffRate: 1.5,
    maxAttempts: 12,
    maxDelay: Duration.minutes(5),
    jitterStrategy: sfn.JitterType.FULL,
  });
}
