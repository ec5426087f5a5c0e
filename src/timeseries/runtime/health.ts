import { Probe } from '../../runtime/probe';
import { TimeSeriesEngines } from '../contract';
import { influxDbProbe } from '../influxdb/runtime/health';
import { lakeProbe } from '../lake/runtime/health';
import { timestreamProbe } from '../timestream/runtime/health';

/** The health probe of each engine, by the `engine` field of the store's probe configuration: a new engine adds its own here. */
export const TIME_SERIES_PROBES: Readonly<Record<string, Probe>> = {
  [TimeSeriesEngines.LIVE_ANALYTICS]: timestreamProbe,
  [TimeSeriesEngines.INFLUXDB]: influxDbProbe,
  [TimeSeriesEngines.LAKE]: lakeProbe,
};
