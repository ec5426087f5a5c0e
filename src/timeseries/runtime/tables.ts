import { TimeSeriesEnv } from '../contract';

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
