import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
// @ts-expect-error TS1479: ESM-only package, transpiled by ts-jest.
import { parquetMetadata, type FileMetaData } from 'hyparquet';
// @ts-expect-error TS1479: as above.
import { parquetWriteBuffer, type ColumnSource, type SchemaElement } from 'hyparquet-writer';
import { readParquet } from '../../src/ons/readers/parquet';
import { OnsRecord, RawRow, RefusedFileError } from '../../src/ons/types';
import { ProcessedParquetWriter, ProcessedSchema } from '../../src/ons/writers/parquet';

const HOUR = 3_600_000;
const schema: ProcessedSchema = {
  dataset: 'curva_carga',
  dimensions: ['id_subsistema'],
  labels: ['nom_subsistema'],
  measures: ['val_carga', 'val_geracao'],
};
const source = { key: 'raw/curva_carga/CURVA_CARGA_2023.parquet', version: 'v-1' };

/** A record at a Brasília wall-clock time (UTC-3, no daylight saving since 2019). */
function rec(local: string, id: string | undefined, nom: string | null, carga: number | null, geracao: number | null, row: number): OnsRecord {
  return {
    dataset: 'curva_carga',
    time: Date.parse(`${local}Z`) + 3 * HOUR,
    local,
    localRaw: local.replace('T', ' '),
    series: `id_subsistema=${id}`,
    dimensions: id === undefined ? {} : { id_subsistema: id },
    labels: { nom_subsistema: nom },
    measures: { val_carga: carga, val_geracao: geracao },
    row,
  };
}

/** What readParquet gives back for a record written by the writer. */
function expected(r: OnsRecord, version: string | null = 'v-1'): RawRow['cells'] {
  return [
    new Date(r.time).toISOString().slice(0, 19).replace('T', ' '),
    r.localRaw,
    r.dimensions.id_subsistema ?? null,
    r.labels.nom_subsistema,
    r.measures.val_carga,
    r.measures.val_geracao,
    source.key,
    version,
    null, // source_time: the source has none
    r.row,
  ];
}

async function collect(data: Uint8Array): Promise<RawRow[]> {
  const rows: RawRow[] = [];
  for await (const row of (await readParquet(data)).rows) rows.push(row);
  return rows;
}

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

function buffer(options: { columnData: ColumnSource[]; schema?: SchemaElement[]; rowGroupSize?: number; codec?: 'GZIP' }): Uint8Array {
  const compressors = { GZIP: (b: Uint8Array) => new Uint8Array(gzipSync(b)) };
  return new Uint8Array(parquetWriteBuffer({ ...options, compressors }));
}

let outDir: string;
beforeEach(() => {
  outDir = mkdtempSync(join(tmpdir(), 'ons-parquet-'));
});
afterEach(() => rmSync(outDir, { recursive: true, force: true }));

describe('ProcessedParquetWriter', () => {
  const records = [
    rec('2023-11-30T22:00:00', 'SE', 'SUDESTE/CENTRO-OESTE', 41234.567, -12.5, 2),
    rec('2023-11-30T23:00:00', 'N', 'Geração', null, 0, 3),
    rec('2023-12-01T00:00:00', 'S', null, -0.000001, null, 4),
    // UTC is 2024-01-01T02:00Z, but the partition follows the local date.
    rec('2023-12-31T23:00:00', 'NE', 'NORDESTE', 9876.5, 1e-8, 5),
    rec('2024-01-01T00:00:00', undefined, 'Geração', 1, 2, 6),
    rec('2024-01-31T23:30:00', 'SE', 'SUDESTE/CENTRO-OESTE', 0, -99999.125, 7),
  ];

  test('partitions by local year and month and reads back every value', async () => {
    const writer = new ProcessedParquetWriter({ outDir, schema, source, sourceName: 'CURVA_CARGA_2023' });
    for (const r of records) await writer.write(r);
    const written = await writer.finish('abc123');

    expect(written.map(({ relativePath, year, month, rows }) => ({ relativePath, year, month, rows }))).toEqual([
      { relativePath: 'dataset=curva_carga/year=2023/month=11/CURVA_CARGA_2023.abc123.parquet', year: '2023', month: '11', rows: 2 },
      { relativePath: 'dataset=curva_carga/year=2023/month=12/CURVA_CARGA_2023.abc123.parquet', year: '2023', month: '12', rows: 2 },
      { relativePath: 'dataset=curva_carga/year=2024/month=01/CURVA_CARGA_2023.abc123.parquet', year: '2024', month: '01', rows: 2 },
    ]);
    expect(files(outDir)).toEqual(written.map((w) => w.relativePath));
    expect(records[3].time).toBe(Date.UTC(2024, 0, 1, 2));

    const expectedByFile = [records.slice(0, 2), records.slice(2, 4), records.slice(4)];
    for (const [i, w] of written.entries()) {
      const data = readFileSync(w.path);
      expect(w.path).toBe(join(outDir, w.relativePath));
      expect(w.bytes).toBe(data.byteLength);
      const table = await readParquet(data);
      expect(table.format).toBe('parquet');
      expect(table.header).toEqual([
        'time', 'local_time', 'id_subsistema', 'nom_subsistema', 'val_carga', 'val_geracao', 'source_key', 'source_version', 'source_time', 'source_row',
      ]);
      const rows = await collect(data);
      expect(rows).toEqual(expectedByFile[i].map((r, j) => ({ row: j + 2, cells: expected(r) })));
    }
  });

  test('writes explicit column types in the footer', async () => {
    const writer = new ProcessedParquetWriter({ outDir, schema, source: { key: source.key, time: Date.parse('2024-03-01T12:00:00Z') }, sourceName: 'X' });
    // All measures null and integral: nothing for auto-detection to guess from.
    await writer.write(rec('2023-05-01T00:00:00', 'SE', null, null, null, 2));
    await writer.write(rec('2023-05-01T01:00:00', 'SE', null, 3, null, 3));
    const [w] = await writer.finish('h');
    const data = readFileSync(w.path);
    const metadata: FileMetaData = parquetMetadata(data);
    const byName = Object.fromEntries(metadata.schema.slice(1).map((e) => [e.name, e]));

    expect(Object.keys(byName)).toEqual(['time', 'local_time', 'id_subsistema', 'nom_subsistema', 'val_carga', 'val_geracao', 'source_key', 'source_version', 'source_time', 'source_row']);
    expect(metadata.schema.slice(1).every((e) => e.repetition_type === 'OPTIONAL')).toBe(true);
    expect(byName.time).toMatchObject({ type: 'INT64', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' } });
    expect(byName.val_carga.type).toBe('DOUBLE');
    expect(byName.val_geracao.type).toBe('DOUBLE');
    for (const name of ['local_time', 'id_subsistema', 'nom_subsistema', 'source_key', 'source_version']) {
      expect(byName[name]).toMatchObject({ type: 'BYTE_ARRAY', converted_type: 'UTF8' });
    }
    expect(byName.source_row.type).toBe('INT32');
    expect(byName.source_time).toMatchObject({ type: 'INT64', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' } });
    expect((await collect(data)).map((r) => r.cells?.slice(4))).toEqual([
      [null, null, source.key, null, '2024-03-01 12:00:00', 2],
      [3, null, source.key, null, '2024-03-01 12:00:00', 3],
    ]);
  });

  test('writes a row group every rowGroupSize rows, under a temporary name until finish', async () => {
    const writer = new ProcessedParquetWriter({ outDir, schema, source, sourceName: 'BIG', rowGroupSize: 1_000 });
    const start = Date.UTC(2023, 2, 1);
    for (let i = 0; i < 2_500; i++) {
      const local = new Date(start + i * 60_000).toISOString().slice(0, 19);
      await writer.write(rec(local, 'SE', 'SUDESTE', i / 4, -i, i + 2));
    }

    const before = files(outDir);
    expect(before).toHaveLength(1);
    expect(before[0]).toMatch(/^\.BIG\..*\.partial$/);
    // Two row groups are already on disk; the last 500 rows are still buffered.
    expect(readFileSync(join(outDir, before[0])).byteLength).toBeGreaterThan(4);

    const [w] = await writer.finish('h');
    expect(files(outDir)).toEqual([w.relativePath]);
    const data = readFileSync(w.path);
    expect(parquetMetadata(data).row_groups.map((g: { num_rows: bigint }) => Number(g.num_rows))).toEqual([1_000, 1_000, 500]);
    const rows = await collect(data);
    expect(rows).toHaveLength(2_500);
    expect(rows.map((r) => r.row)).toEqual(Array.from({ length: 2_500 }, (_, i) => i + 2));
    expect(rows[2_499].cells?.slice(4, 6)).toEqual([2_499 / 4, -2_499]);
  });

  test('caps the rows buffered across partitions, writing several small row groups per file', async () => {
    const partitions = 300;
    const perPartition = 100;
    // Every partition stays open: this test is about the buffered-rows cap, not about closing files.
    const writer = new ProcessedParquetWriter({ outDir, schema, source, sourceName: 'MANY', maxBufferedRows: 1_000, maxOpenPartitions: partitions });
    const byPartition: OnsRecord[][] = Array.from({ length: partitions }, () => []);
    let row = 2;
    let mostBuffered = 0;
    // Round-robin over 300 months (1990-01 .. 2014-12), 20 records at a time: the buffers of many
    // partitions fill at once, as in a file sorted by series rather than by time.
    const block = 20;
    for (let first = 0; first < perPartition; first += block) {
      for (let k = 0; k < partitions; k++) {
        const month = `${1990 + Math.floor(k / 12)}-${String((k % 12) + 1).padStart(2, '0')}`;
        for (let r = first; r < first + block; r++) {
          const local = `${month}-${String(1 + Math.floor(r / 4)).padStart(2, '0')}T${String((r % 4) * 6).padStart(2, '0')}:00:00`;
          const record = rec(local, ['N', 'NE', 'S', 'SE'][r % 4], r % 7 ? 'SUDESTE/CENTRO-OESTE' : null, k + r / 8, r % 5 ? -r : null, row++);
          byPartition[k].push(record);
          await writer.write(record);
          mostBuffered = Math.max(mostBuffered, writer.bufferedRows.now);
        }
      }
    }
    expect(mostBuffered).toBe(1_000);
    expect(writer.bufferedRows.peak).toBe(1_000);
    // Everything over the cap went to the temporary files already.
    expect(files(outDir)).toHaveLength(partitions);
    expect(files(outDir).every((f) => f.endsWith('.partial'))).toBe(true);

    const written = await writer.finish('h');
    expect(writer.bufferedRows.now).toBe(0);
    expect(written).toHaveLength(partitions);
    expect(files(outDir)).toEqual(written.map((w) => w.relativePath).sort());
    let rowGroups = 0;
    for (const [k, w] of written.entries()) {
      expect(w.rows).toBe(perPartition);
      const data = readFileSync(w.path);
      expect(w.bytes).toBe(data.byteLength);
      const metadata: FileMetaData = parquetMetadata(data);
      const groups = metadata.row_groups;
      expect(groups.reduce((n: number, g: { num_rows: bigint }) => n + Number(g.num_rows), 0)).toBe(perPartition);
      rowGroups += groups.length;
      // Footer statistics are kept as copies of the values (truncated to 16 bytes); they must still be the right ones.
      const firstGroup = byPartition[k].slice(0, Number(groups[0].num_rows)).map((r) => r.localRaw).sort();
      const { min_value: min, max_value: max } = groups[0].columns[1].meta_data?.statistics ?? {};
      expect(firstGroup[0].startsWith(min as string)).toBe(true);
      expect(max as string >= firstGroup[firstGroup.length - 1].slice(0, 16)).toBe(true);
      const rows = await collect(data);
      expect(rows).toEqual(byPartition[k].map((r, j) => ({ row: j + 2, cells: expected(r) })));
    }
    // Several row groups per file: the cap made them small.
    expect(rowGroups).toBeGreaterThan(partitions * 3);
  });

  test('a stream in time order, under a cap smaller than a month', async () => {
    const writer = new ProcessedParquetWriter({ outDir, schema, source, sourceName: 'ORDERED', maxBufferedRows: 500 });
    const start = Date.UTC(2023, 0, 1);
    for (let i = 0; i < 3 * 744; i++) {
      const local = new Date(start + i * HOUR).toISOString().slice(0, 19);
      await writer.write(rec(local, 'SE', 'SUDESTE', i, null, i + 2));
    }
    expect(writer.bufferedRows.peak).toBe(500);
    const written = await writer.finish('h');
    expect(written.map((w) => [w.month, w.rows])).toEqual([['01', 744], ['02', 672], ['03', 744], ['04', 72]]);
    let next = 2;
    let rowGroups = 0;
    for (const w of written) {
      const data = readFileSync(w.path);
      const groups = parquetMetadata(data).row_groups.map((g: { num_rows: bigint }) => Number(g.num_rows));
      expect(Math.max(...groups)).toBeLessThanOrEqual(500);
      rowGroups += groups.length;
      const rows = await collect(data);
      expect(rows.map((r) => r.cells?.[9])).toEqual(Array.from({ length: w.rows }, (_, j) => next + j));
      next += w.rows;
    }
    expect(rowGroups).toBeGreaterThan(written.length);
  });

  /** One record per 6 hours through `months` months from 1990-01, in time order. */
  function monthly(months: number): OnsRecord[] {
    const out: OnsRecord[] = [];
    for (let k = 0; k < months; k++) {
      const month = `${1990 + Math.floor(k / 12)}-${String((k % 12) + 1).padStart(2, '0')}`;
      for (let r = 0; r < 40; r++) {
        const local = `${month}-${String(1 + Math.floor(r / 4)).padStart(2, '0')}T${String((r % 4) * 6).padStart(2, '0')}:00:00`;
        out.push(rec(local, ['N', 'NE', 'S', 'SE'][r % 4], r % 3 ? 'NORTE' : null, k * 1_000 + r / 4, r % 5 ? -r : null, out.length + 2));
      }
    }
    return out;
  }

  test('a file spanning 300 months keeps few files open, and writes what it writes with every file open', async () => {
    const input = monthly(300);
    const writer = new ProcessedParquetWriter({ outDir, schema, source, sourceName: 'LONG' });
    let mostOpen = 0;
    for (const r of input) {
      await writer.write(r);
      mostOpen = Math.max(mostOpen, writer.files.open);
    }
    expect(mostOpen).toBe(24);
    expect(writer.files).toEqual({ open: 24, closed: 276 });
    // A month's rows are written once the records reach two months past it: at most two months wait in memory.
    expect(writer.bufferedRows.peak).toBe(2 * 40);
    // Closed files are complete (footer written) but keep their temporary names until finish; open ones at
    // least two months behind have their rows on disk too.
    expect(files(outDir)).toHaveLength(298);
    expect(files(outDir).every((f) => /^\.LONG\.\d{4}-\d{2}\..*\.partial$/.test(f))).toBe(true);

    const written = await writer.finish('h');
    expect(written).toHaveLength(300);
    expect(files(outDir)).toEqual(written.map((w) => w.relativePath).sort());
    expect(written.every((w) => /^dataset=curva_carga\/year=\d{4}\/month=\d{2}\/LONG\.h\.parquet$/.test(w.relativePath))).toBe(true);
    let rows = 0;
    let sum = 0;
    const byFile = new Map<string, Uint8Array>();
    for (const [k, w] of written.entries()) {
      expect(w.rows).toBe(40);
      const data = readFileSync(w.path);
      expect(w.bytes).toBe(data.byteLength);
      byFile.set(w.relativePath, data);
      const read = await collect(data);
      expect(read).toEqual(input.slice(k * 40, (k + 1) * 40).map((r, j) => ({ row: j + 2, cells: expected(r) })));
      rows += read.length;
      for (const row of read) sum += row.cells?.[4] as number;
    }
    expect(rows).toBe(input.length);
    expect(sum).toBe(input.reduce((n, r) => n + (r.measures.val_carga ?? 0), 0));

    // Closing a file early changes none of its bytes.
    const allOpen = join(outDir, 'all-open');
    const reference = new ProcessedParquetWriter({ outDir: allOpen, schema, source, sourceName: 'LONG', maxOpenPartitions: 300 });
    for (const r of input) await reference.write(r);
    for (const w of await reference.finish('h')) expect(readFileSync(w.path).equals(byFile.get(w.relativePath)!)).toBe(true);
  });

  test('a record for a partition whose file was closed goes to a new part file', async () => {
    const input = monthly(5);
    const writer = new ProcessedParquetWriter({ outDir, schema, source, sourceName: 'LATE', maxOpenPartitions: 2 });
    for (const r of input) await writer.write(r);
    expect(writer.files).toEqual({ open: 2, closed: 3 });
    // Late rows for January (closed) and for May (still open).
    const late = [
      rec('1990-01-31T23:00:00', 'SE', 'SUDESTE', 0.5, 1, 500),
      rec('1990-01-31T23:30:00', 'S', null, 0.25, null, 501),
      rec('1990-05-31T23:00:00', 'N', 'NORTE', 7, 7, 502),
    ];
    for (const r of late) await writer.write(r);
    // January's part 2 opened, which closed April's file.
    expect(writer.files).toEqual({ open: 2, closed: 4 });
    // And once more for January, after part 2 was closed too: part 3.
    const later = rec('1990-01-01T00:30:00', 'NE', null, 3, 3, 503);
    await writer.write(rec('1990-03-01T00:00:00', 'N', null, 1, 1, 504));
    await writer.write(rec('1990-04-01T00:00:00', 'N', null, 2, 2, 505));
    await writer.write(later);

    const written = await writer.finish('h');
    expect(written.map((w) => [w.relativePath, w.rows])).toEqual([
      ['dataset=curva_carga/year=1990/month=01/LATE.h.parquet', 40],
      ['dataset=curva_carga/year=1990/month=01/LATE.h-2.parquet', 2],
      ['dataset=curva_carga/year=1990/month=01/LATE.h-3.parquet', 1],
      ['dataset=curva_carga/year=1990/month=02/LATE.h.parquet', 40],
      ['dataset=curva_carga/year=1990/month=03/LATE.h.parquet', 40],
      ['dataset=curva_carga/year=1990/month=03/LATE.h-2.parquet', 1],
      ['dataset=curva_carga/year=1990/month=04/LATE.h.parquet', 40],
      ['dataset=curva_carga/year=1990/month=04/LATE.h-2.parquet', 1],
      ['dataset=curva_carga/year=1990/month=05/LATE.h.parquet', 41],
    ]);
    expect(files(outDir)).toEqual(written.map((w) => w.relativePath).sort());
    const read = async (i: number) => collect(readFileSync(written[i].path));
    expect(await read(0)).toEqual(input.slice(0, 40).map((r, j) => ({ row: j + 2, cells: expected(r) })));
    expect(await read(1)).toEqual(late.slice(0, 2).map((r, j) => ({ row: j + 2, cells: expected(r) })));
    expect(await read(2)).toEqual([{ row: 2, cells: expected(later) }]);
    expect((await read(8)).at(-1)).toEqual({ row: 42, cells: expected(late[2]) });
    let total = 0;
    for (const w of written) {
      expect(w.bytes).toBe(readFileSync(w.path).byteLength);
      total += (await collect(readFileSync(w.path))).length;
    }
    expect(total).toBe(input.length + late.length + 3);
  });

  test('abort removes the files closed early too', async () => {
    const writer = new ProcessedParquetWriter({ outDir, schema, source, sourceName: 'A', maxOpenPartitions: 3 });
    for (const r of monthly(10)) await writer.write(r);
    await writer.write(rec('1990-01-02T00:00:00', 'N', null, 1, 1, 999));
    expect(writer.files).toEqual({ open: 3, closed: 8 });
    // Closed files are on disk; the open ones (September, October, January part 2) have nothing there yet.
    expect(files(outDir)).toHaveLength(8);
    await writer.abort();
    expect(files(outDir)).toEqual([]);
    await expect(writer.write(records[0])).rejects.toThrow('closed');
  });

  test('abort while a file is being closed leaves nothing behind', async () => {
    const writer = new ProcessedParquetWriter({ outDir: join(outDir, 'sub'), schema, source, sourceName: 'A', maxOpenPartitions: 1 });
    await writer.write(records[0]);
    const rejected = expect(writer.write(records[2])).rejects.toThrow('closed'); // closes November's file first
    await writer.abort();
    await rejected;
    expect(files(outDir)).toEqual([]);
  });

  test('abort removes every temporary file', async () => {
    const writer = new ProcessedParquetWriter({ outDir, schema, source, sourceName: 'A', rowGroupSize: 2 });
    for (const r of records) await writer.write(r);
    expect(files(outDir)).toHaveLength(3);
    expect(files(outDir).some((f) => f.endsWith('.parquet'))).toBe(false);
    await writer.abort();
    expect(files(outDir)).toEqual([]);
    await expect(writer.write(records[0])).rejects.toThrow('closed');
  });

  test('abort right after the first write leaves nothing behind', async () => {
    const writer = new ProcessedParquetWriter({ outDir: join(outDir, 'sub'), schema, source, sourceName: 'A' });
    void writer.write(records[0]);
    await writer.abort();
    expect(files(outDir)).toEqual([]);
  });

  test('a failing finish removes the temporary files', async () => {
    const writer = new ProcessedParquetWriter({ outDir, schema, source, sourceName: 'F' });
    for (const r of records) await writer.write(r);
    // A directory in the way of the second file's final name makes its rename fail.
    mkdirSync(join(outDir, 'dataset=curva_carga/year=2023/month=12/F.h.parquet'), { recursive: true });
    await expect(writer.finish('h')).rejects.toThrow();
    expect(files(outDir).filter((f) => f.endsWith('.partial'))).toEqual([]);
  });

  test('finish with no records writes nothing', async () => {
    const writer = new ProcessedParquetWriter({ outDir, schema, source, sourceName: 'EMPTY' });
    await expect(writer.finish('h')).resolves.toEqual([]);
    expect(files(outDir)).toEqual([]);
  });

  test('refuses bad input', async () => {
    expect(() => new ProcessedParquetWriter({ outDir, schema: { ...schema, labels: ['year'] }, source, sourceName: 'A' })).toThrow('reserved');
    expect(() => new ProcessedParquetWriter({ outDir, schema: { ...schema, measures: ['time'] }, source, sourceName: 'A' })).toThrow('duplicated');
    expect(() => new ProcessedParquetWriter({ outDir, schema, source, sourceName: '../A' })).toThrow('file name');
    expect(() => new ProcessedParquetWriter({ outDir, schema, source, sourceName: 'A', maxBufferedRows: 0 })).toThrow('maxBufferedRows');
    expect(() => new ProcessedParquetWriter({ outDir, schema, source, sourceName: 'A', rowGroupSize: 1.5 })).toThrow('rowGroupSize');
    expect(() => new ProcessedParquetWriter({ outDir, schema, source, sourceName: 'A', maxOpenPartitions: 0 })).toThrow('maxOpenPartitions');
    const writer = new ProcessedParquetWriter({ outDir, schema, source, sourceName: 'A' });
    await expect(writer.write({ ...records[0], dataset: 'other' })).rejects.toThrow('dataset');
    await expect(writer.write({ ...records[0], local: '30/11/2023 22:00' })).rejects.toThrow('local time');
    await expect(writer.finish('a/b')).rejects.toThrow('file name');
  });
});

describe('readParquet', () => {
  test('keeps VARCHAR measures as text and trims the header', async () => {
    const data = buffer({
      columnData: [
        { name: ' id_subsistema ', type: 'STRING', data: ['N  ', 'SE', 'S'] },
        { name: 'val_geracao', type: 'STRING', data: ['0E-8', '123.45', ''] },
        { name: 'val_carga', type: 'STRING', data: [null, '-1', 'Geração'] },
      ],
    });
    const table = await readParquet(data);
    expect(table.header).toEqual(['id_subsistema', 'val_geracao', 'val_carga']);
    expect(await collect(data)).toEqual([
      { row: 2, cells: ['N  ', '0E-8', null] },
      { row: 3, cells: ['SE', '123.45', '-1'] },
      { row: 4, cells: ['S', '', 'Geração'] },
    ]);
  });

  test('gives TIMESTAMP and DATE columns as wall-clock text, and converts other types', async () => {
    const data = buffer({
      schema: [
        { name: 'root', num_children: 7 },
        { name: 'din_instante', type: 'INT64', repetition_type: 'OPTIONAL', converted_type: 'TIMESTAMP_MILLIS' },
        { name: 'dat_referencia', type: 'INT32', repetition_type: 'OPTIONAL', converted_type: 'DATE' },
        { name: 'big', type: 'INT64', repetition_type: 'OPTIONAL' },
        { name: 'flag', type: 'BOOLEAN', repetition_type: 'OPTIONAL' },
        { name: 'val', type: 'DOUBLE', repetition_type: 'OPTIONAL' },
        { name: 'n', type: 'INT32', repetition_type: 'REQUIRED' },
        { name: 'meta', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL', converted_type: 'JSON' },
      ],
      columnData: [
        { name: 'din_instante', data: [new Date(Date.UTC(2023, 0, 1, 0, 30)), new Date(Date.UTC(2023, 11, 31, 23, 59, 59)), null] },
        { name: 'dat_referencia', data: [new Date(Date.UTC(2023, 1, 28)), null, 0] },
        { name: 'big', data: [42n, 2n ** 60n + 1n, null] },
        { name: 'flag', data: [true, false, null] },
        { name: 'val', data: [1.5, -0, null] },
        { name: 'n', data: [7, -7, 0] },
        { name: 'meta', data: [{ a: 1 }, [1, 'b'], null] },
      ],
    });
    expect(await collect(data)).toEqual([
      { row: 2, cells: ['2023-01-01 00:30:00', '2023-02-28 00:00:00', 42, 'true', 1.5, 7, '{"a":1}'] },
      { row: 3, cells: ['2023-12-31 23:59:59', null, '1152921504606846977', 'false', -0, -7, '[1,"b"]'] },
      { row: 4, cells: [null, '1970-01-01 00:00:00', null, null, null, 0, null] },
    ]);
  });

  test('reads GZIP and several row groups', async () => {
    const n = 25;
    const data = buffer({
      codec: 'GZIP',
      rowGroupSize: 10,
      columnData: [
        { name: 'id', type: 'STRING', data: Array.from({ length: n }, (_, i) => `id${i}`) },
        { name: 'val', type: 'DOUBLE', data: Array.from({ length: n }, (_, i) => i * 1.5) },
      ],
    });
    expect(parquetMetadata(data).row_groups[0].columns[0].meta_data?.codec).toBe('GZIP');
    const rows = await collect(data);
    expect(rows).toEqual(Array.from({ length: n }, (_, i) => ({ row: i + 2, cells: [`id${i}`, i * 1.5] })));
  });

  test('reads a file with no rows', async () => {
    const data = buffer({ columnData: [{ name: 'a', type: 'STRING', data: [] }] });
    const table = await readParquet(data);
    expect(table.header).toEqual(['a']);
    expect(await collect(data)).toEqual([]);
  });

  test('reads from a view into a larger buffer', async () => {
    const file = buffer({ columnData: [{ name: 'a', type: 'STRING', data: ['x', 'y'] }] });
    const padded = new Uint8Array(file.byteLength + 20);
    padded.set(file, 10);
    const rows = [{ row: 2, cells: ['x'] }, { row: 3, cells: ['y'] }];
    expect(await collect(padded.subarray(10, 10 + file.byteLength))).toEqual(rows);
    // A small Buffer sits in Node's shared pool, and its slice() is a view, not a copy.
    const pooled = Buffer.from(file);
    expect(pooled.byteOffset > 0 || pooled.buffer.byteLength > pooled.byteLength).toBe(true);
    expect(await collect(pooled)).toEqual(rows);
  });

  describe('refuses', () => {
    const good = buffer({ columnData: [{ name: 'a', type: 'STRING', data: ['x', 'y'] }] });

    test.each([
      ['garbage bytes', new TextEncoder().encode('din_instante;val_carga\n2023-01-01;1\n'), /not a Parquet file/],
      ['an empty file', new Uint8Array(0), /not a Parquet file/],
      ['a truncated file', good.slice(0, good.byteLength - 10), /truncated or corrupt/],
      ['a corrupt footer', (() => {
        const bad = good.slice();
        const length = new DataView(bad.buffer).getUint32(bad.byteLength - 8, true);
        bad.fill(0xff, bad.byteLength - 8 - length, bad.byteLength - 8);
        return bad;
      })(), /footer is corrupt/],
    ])('%s', async (_, data, message) => {
      const attempt = readParquet(data);
      await expect(attempt).rejects.toThrow(RefusedFileError);
      await expect(attempt).rejects.toThrow(message);
    });

    test('a corrupt row group, while its rows are read', async () => {
      const bad = good.slice();
      bad.fill(0xff, 4, 16); // the first page header
      const table = await readParquet(bad);
      await expect(collect(bad)).rejects.toThrow(RefusedFileError);
      await expect(table.rows[Symbol.asyncIterator]().next()).rejects.toThrow(/row group 1 cannot be read/);
    });
  });
});
