// What holds a V8 heap, from a .heapsnapshot: self size by constructor, and
// retained size (dominator tree) of the largest holders, each named by its
// constructor and by the edge its dominator reaches it through. bench/memory.ts
// writes snapshots of the real proxy with PROFILE=DIR; this reads one:
//
//   npx vite-node bench/heap-breakdown.ts FILE.heapsnapshot [top]
//
// The snapshot is parsed by hand (numbers straight into typed arrays): a
// snapshot of a heap of a few hundred MB is longer than the longest string
// V8 can JSON.parse.
import { readFileSync } from 'node:fs';

interface Meta {
  node_fields: string[];
  node_types: [string[], ...unknown[]];
  edge_fields: string[];
  edge_types: [string[], ...unknown[]];
}

/** The numbers of a JSON array that starts at `from` (just after its '['). */
function numbers(buf: Buffer, from: number): Float64Array {
  let out = new Float64Array(1 << 20);
  let n = 0;
  let cur = 0;
  let inNum = false;
  for (let i = from; ; i++) {
    const c = buf[i]!;
    if (c >= 48 && c <= 57) {
      cur = cur * 10 + (c - 48);
      inNum = true;
      continue;
    }
    if (inNum) {
      if (n === out.length) {
        const bigger = new Float64Array(out.length * 2);
        bigger.set(out);
        out = bigger;
      }
      out[n++] = cur;
      cur = 0;
      inNum = false;
    }
    if (c === 93 /* ] */) return out.subarray(0, n);
  }
}

function section(buf: Buffer, name: string): number {
  const at = buf.indexOf(`"${name}":[`);
  if (at < 0) throw new Error(`no "${name}" section`);
  return at + name.length + 4;
}

function main(): void {
  const file = process.argv[2];
  if (!file) throw new Error('usage: heap-breakdown.ts FILE.heapsnapshot [top]');
  const top = Number(process.argv[3] ?? 40);
  const buf = readFileSync(file);
  const metaEnd = buf.indexOf('"nodes":[');
  const head = JSON.parse(buf.subarray(0, metaEnd).toString().replace(/,\s*$/, '') + '}') as { snapshot: { meta: Meta } };
  const meta = head.snapshot.meta;
  const nodes = numbers(buf, section(buf, 'nodes'));
  const edges = numbers(buf, section(buf, 'edges'));
  const stringsAt = section(buf, 'strings') - 1;
  const strings = JSON.parse(buf.subarray(stringsAt, buf.lastIndexOf(']') + 1).toString()) as string[];

  const NF = meta.node_fields.length;
  const EF = meta.edge_fields.length;
  const nType = meta.node_fields.indexOf('type');
  const nName = meta.node_fields.indexOf('name');
  const nSize = meta.node_fields.indexOf('self_size');
  const nEdges = meta.node_fields.indexOf('edge_count');
  const eType = meta.edge_fields.indexOf('type');
  const eName = meta.edge_fields.indexOf('name_or_index');
  const eTo = meta.edge_fields.indexOf('to_node');
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const WEAK = edgeTypes.indexOf('weak');
  const SHORTCUT = edgeTypes.indexOf('shortcut');
  const ELEMENT = edgeTypes.indexOf('element');
  const HIDDEN = edgeTypes.indexOf('hidden');
  const N = nodes.length / NF;

  const firstEdge = new Uint32Array(N + 1);
  for (let i = 0, e = 0; i < N; i++) {
    firstEdge[i] = e;
    e += nodes[i * NF + nEdges]! * EF;
  }
  firstEdge[N] = edges.length;
  const selfSize = (i: number) => nodes[i * NF + nSize]!;
  const typeOf = (i: number) => nodeTypes[nodes[i * NF + nType]!]!;
  const nameOf = (i: number) => strings[nodes[i * NF + nName]!]!;
  /** What DevTools calls a node's class: its constructor for objects, its type otherwise. */
  const classOf = (i: number) => {
    const t = typeOf(i);
    if (t === 'object' || t === 'native') return nameOf(i);
    if (t === 'hidden' || t === 'synthetic') return `(${t}) ${nameOf(i).slice(0, 40)}`;
    return `(${t})`;
  };
  const strong = (e: number) => {
    const t = edges[e + eType]!;
    return t !== WEAK && t !== SHORTCUT;
  };

  // Depth-first postorder from the root (node 0), over strong edges.
  const post = new Int32Array(N).fill(-1);
  const order = new Uint32Array(N);
  let count = 0;
  const stack = new Uint32Array(N);
  const cursor = new Uint32Array(N);
  const seen = new Uint8Array(N);
  let sp = 0;
  stack[sp++] = 0;
  seen[0] = 1;
  cursor[0] = firstEdge[0]!;
  while (sp > 0) {
    const v = stack[sp - 1]!;
    let pushed = false;
    while (cursor[v]! < firstEdge[v + 1]!) {
      const e = cursor[v]!;
      cursor[v] = e + EF;
      if (!strong(e)) continue;
      const w = edges[e + eTo]! / NF;
      if (seen[w]) continue;
      seen[w] = 1;
      cursor[w] = firstEdge[w]!;
      stack[sp++] = w;
      pushed = true;
      break;
    }
    if (!pushed) {
      sp--;
      post[v] = count;
      order[count++] = v;
    }
  }

  // Predecessors (strong edges between reachable nodes), as CSR.
  const predCount = new Uint32Array(N + 1);
  for (let v = 0; v < N; v++) {
    if (!seen[v]) continue;
    for (let e = firstEdge[v]!; e < firstEdge[v + 1]!; e += EF) if (strong(e)) predCount[edges[e + eTo]! / NF + 1]!++;
  }
  for (let i = 0; i < N; i++) predCount[i + 1]! += predCount[i]!;
  const preds = new Uint32Array(predCount[N]!);
  const fill = predCount.slice(0, N);
  for (let v = 0; v < N; v++) {
    if (!seen[v]) continue;
    for (let e = firstEdge[v]!; e < firstEdge[v + 1]!; e += EF) if (strong(e)) preds[fill[edges[e + eTo]! / NF]!++] = v;
  }

  // Immediate dominators (Cooper, Harvey, Kennedy), by postorder number.
  const UNDEF = -1;
  const idom = new Int32Array(count).fill(UNDEF);
  const rootPost = post[0]!;
  idom[rootPost] = rootPost;
  const intersect = (a: number, b: number) => {
    while (a !== b) {
      while (a < b) a = idom[a]!;
      while (b < a) b = idom[b]!;
    }
    return a;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (let k = count - 2; k >= 0; k--) {
      const v = order[k]!;
      let nd = UNDEF;
      for (let p = predCount[v]!; p < predCount[v + 1]!; p++) {
        const q = post[preds[p]!]!;
        if (idom[q] === UNDEF) continue;
        nd = nd === UNDEF ? q : intersect(q, nd);
      }
      if (nd !== UNDEF && idom[k] !== nd) {
        idom[k] = nd;
        changed = true;
      }
    }
  }

  // Retained sizes: children before parents in postorder.
  const retained = new Float64Array(count);
  for (let k = 0; k < count; k++) retained[k] = selfSize(order[k]!);
  for (let k = 0; k < count; k++) if (k !== rootPost && idom[k] !== UNDEF) retained[idom[k]!]! += retained[k]!;

  const MB = (b: number) => (b / 1e6).toFixed(1).padStart(7);
  let total = 0;
  const byClass = new Map<string, { size: number; count: number }>();
  for (let k = 0; k < count; k++) {
    const v = order[k]!;
    total += selfSize(v);
    const c = classOf(v);
    const r = byClass.get(c) ?? { size: 0, count: 0 };
    r.size += selfSize(v);
    r.count++;
    byClass.set(c, r);
  }
  process.stdout.write(`${file}: ${N} nodes, ${count} reachable, ${MB(total)} MB reachable\n\nself size by class (top ${top}):\n`);
  for (const [c, r] of [...byClass].sort((a, b) => b[1].size - a[1].size).slice(0, top)) {
    process.stdout.write(`${MB(r.size)} MB  ${String(r.count).padStart(9)}  ${c}\n`);
  }

  // The edge through which a node's immediate dominator (or nearest retainer) reaches it.
  const edgeName = (from: number, to: number): string => {
    for (let e = firstEdge[from]!; e < firstEdge[from + 1]!; e += EF) {
      if (edges[e + eTo]! / NF !== to) continue;
      const t = edges[e + eType]!;
      const name = edges[e + eName]!;
      return t === ELEMENT || t === HIDDEN ? `[${name}]` : String(strings[name]);
    }
    return '?';
  };
  // The dominator tree from the root, down every child holding at least
  // 0.5% of the heap: who holds what, each line named by the edge its
  // dominator (or, through an unnamed wrapper, an ancestor) reaches it by.
  const threshold = total / 200;
  const children = new Map<number, number[]>();
  for (let k = 0; k < count; k++) {
    if (k === rootPost || retained[k]! < threshold) continue;
    const d = idom[k]!;
    let list = children.get(d);
    if (!list) children.set(d, (list = []));
    list.push(k);
  }
  process.stdout.write(`\ndominator tree (retained MB, children holding >= 0.5% of the heap):\n`);
  const walk = (k: number, depth: number) => {
    const kids = (children.get(k) ?? []).sort((a, b) => retained[b]! - retained[a]!);
    for (const c of kids) {
      process.stdout.write(`${MB(retained[c]!)} ${'  '.repeat(depth)}${edgeName(order[k]!, order[c]!)}: ${classOf(order[c]!)}\n`);
      if (depth < 12) walk(c, depth + 1);
    }
  };
  walk(rootPost, 0);
  // What the root holds directly in pieces under the threshold (objects reachable
  // from several holders at once: shared between the planner and a dataplane, say).
  const small = new Map<string, { size: number; count: number }>();
  for (let k = 0; k < count; k++) {
    if (k === rootPost || idom[k] !== rootPost || retained[k]! >= threshold) continue;
    const c = classOf(order[k]!);
    const r = small.get(c) ?? { size: 0, count: 0 };
    r.size += retained[k]!;
    r.count++;
    small.set(c, r);
  }
  process.stdout.write(`\nheld by no single holder (the root's children under the threshold), by class:\n`);
  for (const [c, r] of [...small].sort((a, b) => b[1].size - a[1].size).slice(0, top)) {
    process.stdout.write(`${MB(r.size)} MB  ${String(r.count).padStart(9)}  ${c}\n`);
  }
}

main();
