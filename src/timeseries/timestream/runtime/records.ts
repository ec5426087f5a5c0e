import type { _Record, Dimension, MeasureValue, WriteRecordsRequest } from '@aws-sdk/client-timestream-write';
import type { PointRecord } from '../../runtime/layout';

/**
 * Timestream multi-measure records: batches of at most 100 records with common attributes, and the
 * write size Timestream meters for a request. No Parquet here, so the benchmark runs it as is.
 */

/** Records per WriteRecords request: the service's limit. */
export const MAX_RECORDS_PER_REQUEST = 100;

// The benchmark imports the record shape from here.
export type { PointRecord } from '../../runtime/layout';

/** What every request of a load shares. */
export interface BatchTarget {
  readonly database: string;
  readonly table: string;
  /** The measure name of every record: the dataset id. */
  readonly measureName: string;
  /** The source object's last-modified time in ms: a replay is idempotent, a revised file wins. */
  readonly version: number;
}

/**
 * A WriteRecords request for up to 100 records: measure name, type, time unit and version as common
 * attributes, plus every dimension all records share (sent, and metered, once).
 */
export function buildRequest(target: BatchTarget, records: readonly PointRecord[]): WriteRecordsRequest {
  if (records.length === 0 || records.length > MAX_RECORDS_PER_REQUEST) throw new Error(`a request takes 1 to ${MAX_RECORDS_PER_REQUEST} records, got ${records.length}`);
  const common = commonDimensions(records);
  const Records: _Record[] = records.map((r) => {
    const Dimensions: Dimension[] = [];
    for (const [Name, Value] of r.dimensions) if (common.get(Name) !== Value) Dimensions.push({ Name, Value });
    const MeasureValues: MeasureValue[] = r.measures.map(([Name, v]) => ({ Name, Value: String(v), Type: 'DOUBLE' }));
    return Dimensions.length ? { Dimensions, Time: String(r.time), MeasureValues } : { Time: String(r.time), MeasureValues };
  });
  return {
    DatabaseName: target.database,
    TableName: target.table,
    CommonAttributes: {
      ...(common.size ? { Dimensions: [...common].map(([Name, Value]) => ({ Name, Value })) } : {}),
      MeasureName: target.measureName,
      MeasureValueType: 'MULTI',
      TimeUnit: 'MILLISECONDS',
      Version: target.version,
    },
    Records,
  };
}

/** Dimensions with the same value in every record (a record lacking one breaks it). */
function commonDimensions(records: readonly PointRecord[]): Map<string, string> {
  const common = new Map(records[0].dimensions);
  for (let i = 1; i < records.length && common.size; i++) {
    const dims = new Map(records[i].dimensions);
    for (const [name, value] of common) if (dims.get(name) !== value) common.delete(name);
  }
  return common;
}

/** The measure values (points) of a request's records. */
export function pointsOf(request: WriteRecordsRequest, indexes?: Iterable<number>): number {
  const records = request.Records ?? [];
  let points = 0;
  for (const i of indexes ?? records.keys()) points += records[i]?.MeasureValues?.length ?? (records[i]?.MeasureValue !== undefined ? 1 : 0);
  return points;
}

const utf8 = (s: string | undefined) => (s ? Buffer.byteLength(s, 'utf8') : 0);
const valueBytes = (type: string | undefined, value: string | undefined) =>
  (type === 'BOOLEAN' ? 1 : type === 'VARCHAR' ? utf8(value) : 8); // BIGINT, DOUBLE, TIMESTAMP: 8 bytes

/**
 * The bytes Timestream meters for a request (developer guide, "Metering and cost optimization →
 * Writes"): per record 8 bytes of timestamp plus the UTF-8 bytes of each dimension name and value,
 * each measure name, and 8 bytes per DOUBLE/BIGINT value (1 per BOOLEAN, UTF-8 bytes per VARCHAR);
 * common attributes count once per request. Billed in 1 KiB write units per request: ceil(bytes / 1024).
 * (Timestream may also charge repeated dimensions once without common attributes; not counted here.)
 */
export function meteredBytes(request: WriteRecordsRequest): number {
  const c = request.CommonAttributes ?? {};
  let bytes = 0;
  for (const d of c.Dimensions ?? []) bytes += utf8(d.Name) + utf8(d.Value);
  bytes += utf8(c.MeasureName);
  if (c.Time) bytes += 8;
  for (const r of request.Records ?? []) {
    if (!c.Time || r.Time) bytes += 8;
    for (const d of r.Dimensions ?? []) bytes += utf8(d.Name) + utf8(d.Value);
    bytes += utf8(r.MeasureName);
    if (r.MeasureValue !== undefined) bytes += valueBytes(r.MeasureValueType ?? c.MeasureValueType, r.MeasureValue);
    for (const m of r.MeasureValues ?? []) bytes += utf8(m.Name) + valueBytes(m.Type, m.Value);
  }
  return bytes;
}

/** Billed write units of a request: its metered bytes in 1 KiB units, rounded up. */
export function writeUnits(request: WriteRecordsRequest): number {
  return Math.max(1, Math.ceil(meteredBytes(request) / 1024));
}
