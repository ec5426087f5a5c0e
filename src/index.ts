export * from './platform/stage';
export * from './platform/platform';
export * from './lake/lifecycle';
export * from './lake/data-lake-props';
export * from './lake/data-lake';
export * from './ingestion/pipeline-props';
export * from './ingestion/pipeline';
export * from './ingestion/ledger-table';
