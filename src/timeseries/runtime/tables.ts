import { ServedDataset, TimeSeriesEnv } from '../contract';

/** `TABLES` from the environment: a JSON object of dataset id → table name (the construct sets it). */
export function tablesEnv(): Record<string, string> {
  const text = process.env[TimeSeriesEnv.TABLES] ?? '{}';
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${TimeSeriesEnv.TABLES} is not JSON`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed) || !Object.values(parsed).every((v) => typeof v === 'string' && v)) {
    throw new Error(`${TimeSeriesEnv.TABLES} must be a JSON object of dataset id to table name`);
  }
  return parsed as Record<string, string>;
}

const NAME = /^[a-z][a-z0-9_]{0,254}$/;

/** `DATASETS` from the environment: the served datasets outside the catalog (the construct sets it); none when unset. */
export function datasetsEnv(): ServedDataset[] {
  const text = process.env[TimeSeriesEnv.DATASETS];
  if (!text) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${TimeSeriesEnv.DATASETS} is not JSON`);
  }
  const names = (v: unknown): v is string[] => Array.isArray(v) && v.every((n) => typeof n === 'string' && NAME.test(n));
  const valid = Array.isArray(parsed) && parsed.every((d) => d && typeof d.id === 'string' && NAME.test(d.id) && names(d.dimensions)
    && Array.isArray(d.measures) && d.measures.length > 0
    && d.measures.every((m: any) => m && typeof m.name === 'string' && NAME.test(m.name) && (m.unit === null || typeof m.unit === 'string')));
  if (!valid) throw new Error(`${TimeSeriesEnv.DATASETS} must be a JSON array of { id, dimensions, measures: [{ name, unit }] }`);
  return parsed as ServedDataset[];
}
