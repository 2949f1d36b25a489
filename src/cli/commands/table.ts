// Columns as ipvsadm, conntrack and cilium-dbg print them: a header row, then
// rows, left-aligned and separated by at least two spaces. Each column has a
// minimum width sized for its usual content (an IPv4 address and port, a
// service name), so the columns stay put from one run to the next; a longer
// cell widens its column for the whole table rather than breaking alignment.
// The last column is not padded (no trailing blanks).
export interface Column {
  title: string;
  min: number;
  /** Right-aligned (counts). */
  right?: boolean;
}

export function formatTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((c, i) => Math.max(c.min, c.title.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => columns
    .map((c, i) => {
      const cell = cells[i] ?? '';
      if (i === columns.length - 1) return c.right ? cell.padStart(widths[i]!) : cell;
      return c.right ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!);
    })
    .join('  ')
    .trimEnd();
  return [line(columns.map((c) => c.title)), ...rows.map(line)].join('\n') + '\n';
}

/** "10.96.0.10:80/TCP", "[fd00::1]:80/TCP". */
export function endpoint(address: string, port: number, protocol?: string): string {
  const host = address.includes(':') ? `[${address}]` : address;
  return `${host}:${port}${protocol ? `/${protocol}` : ''}`;
}

/** "3m12s", "2h5m", "41s": an age or a duration for a column. */
export function age(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) ? `${Math.floor((s % 3600) / 60)}m` : ''}`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600) ? `${Math.floor((s % 86400) / 3600)}h` : ''}`;
}
