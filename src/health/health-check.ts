import { Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { IHealthProbe } from '../core/health-probe';
import { acknowledgeScopedWildcards } from '../core/nag';

/**
 * Gives the health function a component's probe: its configuration in the component's variable (`HealthEnv`),
 * and the permissions of its calls.
 * @internal
 */
export function addHealthProbe(healthFunction: lambda.Function, variable: string, probe: IHealthProbe): void {
  healthFunction.addEnvironment(variable, Stack.of(healthFunction).toJsonString(probe.config));
  probe.grant(healthFunction);
  acknowledgeScopedWildcards(healthFunction.role!);
}
