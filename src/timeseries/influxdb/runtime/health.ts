import { GetDbInstanceCommand, TimestreamInfluxDBClient } from '@aws-sdk/client-timestream-influxdb';
import { failed, inState, once, Probe } from '../../../runtime/probe';
import { traced } from '../../../runtime/telemetry';

const controlPlane = once(() => traced(new TimestreamInfluxDBClient({})));

/**
 * The control plane's GetDbInstance (timestream-influxdb:GetDbInstance), so the check needs no VPC: up when the
 * instance is AVAILABLE, down with its status otherwise.
 */
export const influxDbProbe: Probe = {
  parameters: ['instanceId'],
  run: async ({ instanceId }, signal, fail) => {
    try {
      const instance = await controlPlane().send(new GetDbInstanceCommand({ identifier: instanceId }), { abortSignal: signal });
      return inState(instance.status, ['AVAILABLE'], fail, { instanceId });
    } catch (error) {
      return failed(error, fail, { instanceId });
    }
  },
};
