/**
 * The import-layering rules of ARCHITECTURE.md, checked over the source tree (the test suite
 * runs this and fails on any violation, the way VS Code's code-layering lint rule does).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';

export interface Violation {
  file: string;
  specifier: string;
  rule: string;
}

interface ImportRef {
  specifier: string;
  typeOnly: boolean;
}

const IMPORT = /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[\s\S]*?\sfrom\s+)??['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|\brequire\(\s*['"]([^'"]+)['"]\s*\)/g;

export function importsOf(source: string): ImportRef[] {
  const refs: ImportRef[] = [];
  for (const match of source.matchAll(IMPORT)) {
    const specifier = match[3] ?? match[4] ?? match[5];
    if (specifier) refs.push({ specifier, typeOnly: Boolean(match[2]) });
  }
  return refs;
}

function sourceFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) return [];
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    // Tests may reach across layers to set things up; the rules govern shipped code.
    return /\.(ts|tsx|mts|js|mjs)$/.test(name) && !/\.(d|test)\.ts$/.test(name) ? [path] : [];
  });
}

const NODE_BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));
/** The relay's pure core may use only these besides its own files: hashing and address arithmetic are computation, not I/O. */
const CORE_ALLOWED_BUILTINS = new Set(['node:crypto', 'ipaddr.js']);

/** Which top-level layer a path belongs to, with relay's core as its own layer. */
function layerOf(root: string, file: string): string | undefined {
  const rel = relative(root, file).split(sep);
  if (rel[0] === 'relay' && rel[1] === 'src') return rel[2] === 'core' ? 'relay-core' : 'relay';
  return ['main', 'preload', 'renderer'].includes(rel[0]!) ? rel[0] : undefined;
}

export function findLayeringViolations(root: string): Violation[] {
  const violations: Violation[] = [];
  const files = ['relay/src', 'main', 'preload', 'renderer'].flatMap((dir) => sourceFiles(join(root, dir)));
  for (const file of files) {
    const layer = layerOf(root, file)!;
    const rel = relative(root, file);
    for (const { specifier, typeOnly } of importsOf(readFileSync(file, 'utf8'))) {
      const report = (rule: string): void => void violations.push({ file: rel, specifier, rule });
      const isRelative = specifier.startsWith('.');
      const target = isRelative ? resolve(dirname(file), specifier) : undefined;
      const targetLayer = target ? layerOf(root, target) : undefined;
      const targetRel = target ? relative(root, target).replace(/\.(js|ts)$/, '') : undefined;
      if (isRelative && target && !targetLayer && !relative(root, target).startsWith('..')) {
        report(`${layer} may not import files outside the layers`);
        continue;
      }
      switch (layer) {
        case 'relay-core':
          if (isRelative ? targetLayer !== 'relay-core' : !CORE_ALLOWED_BUILTINS.has(specifier)) {
            report('relay/src/core is the pure core: no I/O modules, no adapters (only other core files, node:crypto and ipaddr.js)');
          }
          break;
        case 'relay':
          if (isRelative ? !targetLayer?.startsWith('relay') : specifier === 'electron') report('relay imports nothing from the desktop');
          break;
        case 'main':
          if (isRelative && targetLayer?.startsWith('relay')) report("main uses the relay's exported client types (@lifeline/relay/client), never its internals");
          if (isRelative && targetLayer === 'renderer') report('main may not import the renderer');
          if (!isRelative && /^@lifeline\/relay\/(?!client$)/.test(specifier)) report("main may import only @lifeline/relay/client from the relay package");
          break;
        case 'preload':
          if (isRelative ? targetRel !== 'preload/contract' && targetLayer !== 'preload' : specifier !== 'electron') {
            report("preload imports only preload/contract.ts and electron's contextBridge/ipcRenderer");
          }
          break;
        case 'renderer':
          if (isRelative) {
            if (targetLayer === 'preload' ? !(typeOnly && targetRel === 'preload/contract') : targetLayer !== 'renderer') {
              report('renderer imports only renderer files and, type-only, preload/contract.ts');
            }
          } else if (NODE_BUILTINS.has(specifier) || ['electron', 'ssh2', 'keytar'].includes(specifier)) {
            report('renderer runs without Node, ssh2 or secrets');
          }
          break;
      }
    }
  }
  return violations;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  const violations = findLayeringViolations(resolve(dirname(new URL(import.meta.url).pathname), '..'));
  for (const v of violations) console.error(`Bad layering: ${v.file} imports '${v.specifier}': ${v.rule}`);
  process.exit(violations.length > 0 ? 1 : 0);
}
