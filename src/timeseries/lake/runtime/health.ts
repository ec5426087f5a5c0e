import { AthenaClient, GetDatabaseCommand, GetWorkGroupCommand } from '@aws-sdk/client-athena';
import { failed, inState, once, Probe } from '../../../runtime/probe';
import { traced } from '../../../runtime/telemetry';

/** Athena's data catalog of Glue databases. */
const GLUE_CATALOG = 'AwsDataCatalog';

// The standard AWS_ENDPOINT_URL_ATHENA points it elsewhere (tests, VPC endpoints).
const athena = once(() => traced(new AthenaClient({})));

/**
 * The lake engine: GetWorkGroup (athena:GetWorkGroup), up only when the workgroup is ENABLED, then Athena's
 * GetDatabase of the Glue database (athena:GetDatabase on the AwsDataCatalog, glue:GetDatabase): read-only calls,
 * through the client the query handler uses.
 */
export const lakeProbe: Probe = {
  parameters: ['workGroup', 'database'],
  run: async ({ workGroup, database }, signal, fail) => {
    try {
      const { WorkGroup } = await athena().send(new GetWorkGroupCommand({ WorkGroup: workGroup }), { abortSignal: signal });
      if (WorkGroup?.State !== 'ENABLED') return inState(WorkGroup?.State, ['ENABLED'], fail, { workGroup });
      await athena().send(new GetDatabaseCommand({ CatalogName: GLUE_CATALOG, DatabaseName: database }), { abortSignal: signal });
      return { status: 'up' };
    } catch (error) {
      // Athena answers a missing database with MetadataException and a missing workgroup with InvalidRequestException
      // "WorkGroup ... is not found" (both 400): reported as what they are.
      const e = error as Error | undefined;
      if (e?.name === 'MetadataException' || (e?.name === 'InvalidRequestException' && /not found/i.test(e.message))) {
        fail('not found', { workGroup, database, errorType: e.name });
        return { status: 'down', detail: { reason: 'not found' } };
      }
      return failed(error, fail, { workGroup, database });
    }
  },
};
