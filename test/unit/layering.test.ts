// The layers read one way, checked the way VS Code's import lint rule checks
// its own: the folder a file is in is its layer, and a layer imports only the
// layers listed for it below. A file that imports upward fails with the file,
// the line and the import.
//
//   util <- model <- planner <- dataplane <- runtime <- cli
//   sources: util and model;  config: util only, beside runtime
//
// `util` is the bottom layer (bpfproxy's "base"): IP parsing, paths, the
// logger and clock types, the mode names, the Maglev limits. It imports
// nothing of ours.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/util/paths.js';

/** Layer -> the layers it may import (its own is always allowed). The one table of this test. */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  util: [],
  model: ['util'],
  planner: ['util', 'model'],
  dataplane: ['util', 'model', 'planner'],
  sources: ['util', 'model'],
  // Config validates names and values; it knows no dataplane, planner or model types.
  config: ['util'],
  runtime: ['util', 'model', 'planner', 'dataplane', 'sources', 'config'],
  cli: ['util', 'model', 'planner', 'dataplane', 'sources', 'config', 'runtime'],
  // The lab may use anything but the demo; the demo is built on the lab.
  lab: ['util', 'model', 'planner', 'dataplane', 'sources', 'config', 'runtime', 'cli'],
  demo: ['util', 'model', 'planner', 'dataplane', 'sources', 'config', 'runtime', 'cli', 'lab'],
};

/**
 * A mode's folder (src/dataplane/<mode>/) is reached only through
 * src/dataplane/select.ts (and types.ts): the runtime opens "a dataplane", not
 * the bpf one. Files of these layers may still reach in: the command line's
 * cleanup, the lab and the demo.
 */
const MAY_REACH_INTO_MODES: readonly string[] = ['cli', 'lab', 'demo'];

interface Violation {
  file: string;
  line: number;
  specifier: string;
  why: string;
}

const SRC = join(PACKAGE_ROOT, 'src');

function layerOf(file: string): string {
  return relative(SRC, file).split(sep)[0]!;
}

/** src/dataplane/<mode>/... -> <mode>; anything else -> null. */
function modeFolderOf(file: string): string | null {
  const parts = relative(SRC, file).split(sep);
  return parts[0] === 'dataplane' && parts.length > 2 ? parts[1]! : null;
}

/** Every import specifier in a file: static imports and re-exports, and import('...') with a literal. */
function importsOf(text: string): { specifier: string; line: number }[] {
  const { importedFiles } = ts.preProcessFile(text, true, true);
  return importedFiles.map((f) => ({ specifier: f.fileName, line: text.slice(0, f.pos).split('\n').length }));
}

function checkFile(file: string, text: string): Violation[] {
  const out: Violation[] = [];
  const from = layerOf(file);
  const allowed = ALLOWED[from];
  if (!allowed) return [{ file, line: 1, specifier: '', why: `src/${from} is not a known layer: add it to ALLOWED` }];
  for (const { specifier, line } of importsOf(text)) {
    if (!specifier.startsWith('.')) continue; // A package, not one of our layers.
    const target = resolve(dirname(file), specifier);
    const to = layerOf(target);
    if (to.startsWith('..')) {
      out.push({ file, line, specifier, why: 'imports from outside src/' });
      continue;
    }
    if (to !== from && !allowed.includes(to)) {
      out.push({ file, line, specifier, why: `${from} may not import ${to} (allowed: ${allowed.join(', ') || 'nothing of ours'})` });
      continue;
    }
    const mode = modeFolderOf(target);
    if (mode === null || modeFolderOf(file) === mode || MAY_REACH_INTO_MODES.includes(from)) continue;
    const isSelector = relative(SRC, file) === join('dataplane', 'select.ts');
    if (!isSelector) out.push({ file, line, specifier, why: `reaches into the ${mode} mode: go through dataplane/select.ts or dataplane/types.ts` });
  }
  return out;
}

function sourceFiles(): string[] {
  return readdirSync(SRC, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => join(SRC, f))
    .sort();
}

const format = (v: Violation) => `${relative(PACKAGE_ROOT, v.file)}:${v.line}: import '${v.specifier}': ${v.why}`;

describe('layering', () => {
  it('every file of src/ imports only the layers below its own', () => {
    const files = sourceFiles();
    expect(files.length).toBeGreaterThan(40);
    const violations = files.flatMap((f) => checkFile(f, readFileSync(f, 'utf8')));
    expect(violations.map(format)).toEqual([]);
  });

  it('every folder of src/ is a layer in the table', () => {
    const folders = readdirSync(SRC, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
    expect(folders).toEqual(Object.keys(ALLOWED).sort());
  });

  // The checker itself, on files that break the rules, so a parser that finds
  // nothing cannot pass the test above by accident.
  it('finds upward imports: static, type-only, re-exports and dynamic', () => {
    const fake = (path: string) => join(SRC, ...path.split('/'));
    const text = [
      "import type { Logger } from '../runtime/proxy.js';",
      "import {",
      "  ProxyMode,",
      "} from '../dataplane/types.js';",
      "export { x } from '../config/config.js';",
      "import { familyOf } from '../util/ip.js';",
      "import { pino } from 'pino';",
      "const m = await import('../sources/k8s.js');",
    ].join('\n');
    const found = checkFile(fake('model/x.ts'), text);
    expect(found.map((v) => [v.line, v.specifier])).toEqual([
      [1, '../runtime/proxy.js'], [4, '../dataplane/types.js'], [5, '../config/config.js'], [8, '../sources/k8s.js'],
    ]);
    expect(format(found[0]!)).toBe("src/model/x.ts:1: import '../runtime/proxy.js': model may not import runtime (allowed: util)");
  });

  it('finds the runtime reaching into a mode, and lets the selector and the mode itself do so', () => {
    const fake = (path: string) => join(SRC, ...path.split('/'));
    expect(checkFile(fake('runtime/x.ts'), "import { BpfDataplane } from '../dataplane/bpf/dataplane.js';")).toHaveLength(1);
    expect(checkFile(fake('runtime/x.ts'), "import { openDataplane } from '../dataplane/select.js';")).toEqual([]);
    expect(checkFile(fake('dataplane/select.ts'), "import { bpfMode } from './bpf/mode.js';")).toEqual([]);
    expect(checkFile(fake('dataplane/bpf/x.ts'), "import { a } from './map.js';\nimport type { SyncError } from '../types.js';")).toEqual([]);
    expect(checkFile(fake('dataplane/nftables/x.ts'), "import { a } from '../bpf/map.js';")).toHaveLength(1);
  });
});
