// --logging-format=text: a pino JSON line rewritten as klog writes its lines,
//   I1202 02:31:16.123456    1234 bpfproxy] "synced" full=true services=12
// level letter (I, W, E, F; debug and trace are I, as klog's verbose lines are),
// month and day, time with microseconds (UTC), pid, the component where klog puts
// file:line (a call site would cost a stack capture per line), the message quoted,
// then the fields as key=value, strings quoted. An error's stack follows on
// indented lines.

const LETTERS: readonly [number, string][] = [[60, 'F'], [50, 'E'], [40, 'W'], [0, 'I']];
const OWN_KEYS = new Set(['level', 'time', 'msg', 'component']);

function letter(level: number): string {
  return LETTERS.find(([min]) => level >= min)![1];
}

/** "2025-12-02T02:31:16.123456Z" -> "1202 02:31:16.123456". */
function klogTime(iso: string): string {
  const m = /^\d{4}-(\d\d)-(\d\d)T([\d:.]+)Z$/.exec(iso);
  return m ? `${m[1]}${m[2]} ${m[3]}` : iso;
}

function value(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return JSON.stringify(v);
}

function errorFields(key: string, err: Record<string, unknown>): { text: string; stack: string } {
  const { message, stack, type, ...rest } = err;
  const extra = Object.entries(rest).map(([k, v]) => ` ${key}.${k}=${value(v)}`).join('');
  // The stack's first line repeats the message; keep the frames and any "caused by".
  const frames = typeof stack === 'string' ? stack.split('\n').slice(1).map((l) => `\t${l.trim()}`).join('\n') : '';
  return { text: `${key}=${value(message ?? type ?? '')}${extra}`, stack: frames };
}

export function formatTextLine(json: string, pid: number): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const head = `${letter(Number(rec.level))}${klogTime(String(rec.time))} ${String(pid).padStart(7)} ${String(rec.component ?? 'bpfproxy')}] ${JSON.stringify(String(rec.msg ?? ''))}`;
  const parts: string[] = [];
  const stacks: string[] = [];
  for (const [k, v] of Object.entries(rec)) {
    if (OWN_KEYS.has(k)) continue;
    if ((k === 'err' || k === 'error') && typeof v === 'object' && v !== null) {
      const e = errorFields(k, v as Record<string, unknown>);
      parts.push(e.text);
      if (e.stack) stacks.push(e.stack);
      continue;
    }
    parts.push(`${k}=${value(v)}`);
  }
  return `${[head, ...parts].join(' ')}\n${stacks.map((s) => `${s}\n`).join('')}`;
}
