import type { Spread } from './stats.js'

// Numbers as the report prints them.

export function num (value: number | undefined, digits = 1): string {
  if (value === undefined || !Number.isFinite(value)) return 'n/a'
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/** "min / median / max" with a unit. */
export function range (s: Spread | undefined, digits = 1, unit = ''): string {
  if (s === undefined) return 'n/a'
  return `${num(s.min, digits)} / **${num(s.median, digits)}** / ${num(s.max, digits)}${unit}`
}

export function mb (bytes: number | undefined, digits = 1): string {
  return bytes === undefined ? 'n/a' : `${num(bytes / 1e6, digits)} MB`
}

export function table (header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}
