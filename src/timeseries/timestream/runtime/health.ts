import { DescribeDatabaseCommand, TimestreamWriteClient } from '@aws-sdk/client-timestream-write';
import { failed, once, Probe } from '../../../runtime/probe';
import { traced } from '../../../runtime/telemetry';
import { TimeSeriesEnv } from '../../contract';

// With an endpoint the SDK skips endpoint discovery (tests, VPC endpoints).
const timestream = once(() => {
  const endpoint = process.env[TimeSeriesEnv.HEALTH_TIMESTREAM_ENDPOINT];
  return traced(new TimestreamWriteClient(endpoint ? { endpoint } : {}));
});

/** DescribeDatabase (timestream:DescribeDatabase, and DescribeEndpoints first): up when the database answers. */
export const timestreamProbe: Probe = {
  parameters: ['database'],
  run: async ({ database }, signal, fail) => {
    try {
      await timestream().send(new DescribeDatabaseCommand({ DatabaseName: database }), { abortSignal: signal });
      return { status: 'up' };
    } catch (error) {
      return failed(error, fail, { database });
    }
  },
};
