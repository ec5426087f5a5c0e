/** Limits of the domain core that the constructs also set (no reader code here: a construct may import it). */

/**
 * Default cap on the bytes inflated from one XLSX workbook's parts (zip-bomb guard): 2 GiB. Memory no longer grows
 * with the sheet (it is read by random access), so the cap bounds reading time; Excel's 1,048,576 rows of ONS data
 * stay far below it.
 */
export const XLSX_MAX_EXPANDED_BYTES = 2 * 1024 * 1024 * 1024;
