import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { demo } from '../samples/demo.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

interface Block {
  /** 1-based line of the block's first line of code in README.md. */
  line: number;
  code: string;
}

/** The fenced blocks of README.md in the given languages, with their position. */
function blocks(languages: string[]): Block[] {
  const found: Block[] = [];
  const fence = /^( *)```(\S*)\n([\s\S]*?)^\1```$/gm;
  for (const match of readme.matchAll(fence)) {
    if (!languages.includes(match[2] ?? '')) continue;
    const indent = match[1] ?? '';
    const code = (match[3] ?? '').replace(new RegExp(`^${indent}`, 'gm'), '');
    found.push({ line: readme.slice(0, match.index).split('\n').length + 1, code });
  }
  return found;
}

/**
 * What README fragments may use without declaring it: the names its prose introduces (a proxy, a
 * server and its `Api`, the samples' `print`). A fragment that declares or imports one of these
 * names shadows it. Every export of `qam` and `qam/testing` is imported into each fragment that
 * does not declare that name itself, as a reader would.
 */
const globals = `
import type { QAMProxy as Proxy, QAMServer as Server } from 'qam';
declare global {
  class Calculator {
    adder_function(a: number, b: number): number;
  }
  class Point {
    constructor(x: number, y: number);
  }
  function add(x: number, y: number): number;
  type Api = {
    add: (x: number, y: number) => number;
    sleep: (seconds: number) => string;
    record: (line: string) => void;
    build_report: (seconds: number) => string;
    fib: (n: number) => number;
    inventory: { take(item: string): number };
    my_instance: Calculator;
  };
  const proxy: Proxy<Api>;
  const server: Server;
  const serverId: string;
  function print(line: string): void;
  function ok(result: number): void;
  function err(error: Error): void;
  function delay(ms: number): Promise<void>;
  function buildServer(url: string): Server;
}
export {};
`;

const virtual = new Map<string, string>([
  [join(root, '.readme', 'globals.d.ts'), globals],
  [join(root, '.readme', 'server.ts'), 'export type Api = { add: (x: number, y: number) => number; my_instance: Calculator };\n'],
  [join(root, '.readme', 'cpu.ts'), 'export declare function fib(n: number): number;\n'],
]);

/** The names a fragment declares or imports at its top level. */
function topLevelNames(code: string): Set<string> {
  const names = new Set<string>();
  const source = ts.createSourceFile('block.ts', code, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
  const bind = (name: ts.BindingName): void => {
    if (ts.isIdentifier(name)) names.add(name.text);
    else for (const element of name.elements) if (!ts.isOmittedExpression(element)) bind(element.name);
  };
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement)) {
      const clause = statement.importClause;
      if (clause?.name !== undefined) names.add(clause.name.text);
      const bindings = clause?.namedBindings;
      if (bindings !== undefined && ts.isNamespaceImport(bindings)) names.add(bindings.name.text);
      if (bindings !== undefined && ts.isNamedImports(bindings)) for (const element of bindings.elements) names.add(element.name.text);
    } else if (ts.isVariableStatement(statement)) {
      for (const declaration of statement.declarationList.declarations) bind(declaration.name);
    } else if (
      (ts.isFunctionDeclaration(statement) ||
        ts.isClassDeclaration(statement) ||
        ts.isInterfaceDeclaration(statement) ||
        ts.isTypeAliasDeclaration(statement) ||
        ts.isEnumDeclaration(statement)) &&
      statement.name !== undefined
    ) {
      names.add(statement.name.text);
    }
  }
  return names;
}

/** The exported names of a module of this package, read by the compiler, each as it must be imported. */
function exportsOf(program: ts.Program, file: string): { name: string; specifier: string }[] {
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file);
  const symbol = source === undefined ? undefined : checker.getSymbolAtLocation(source);
  if (symbol === undefined) throw new Error(`cannot read the exports of ${file}`);
  return checker.getExportsOfModule(symbol).map((exported) => {
    const target = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    const isValue = (target.flags & ts.SymbolFlags.Value) !== 0;
    return { name: exported.name, specifier: isValue ? exported.name : `type ${exported.name}` };
  });
}

/** Diagnostics a fragment may have: it shows a use, so what it declares may stay unused. */
const unusedCodes = new Set([6133, 6138, 6192, 6196, 6198, 6205]);

function compilerOptions(): ts.CompilerOptions {
  const configFile = join(root, 'tsconfig.build.json');
  const config = ts.getParsedCommandLineOfConfigFile(configFile, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
  if (config === undefined) throw new Error('cannot read tsconfig.build.json');
  return {
    ...config.options,
    noEmit: true,
    baseUrl: root,
    paths: { qam: ['lib/index.ts'], 'qam/testing': ['lib/testing.ts'] },
  };
}

function program(files: Map<string, string>, options: ts.CompilerOptions, roots: string[] = [], old?: ts.Program): ts.Program {
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile, directoryExists } = host;
  host.fileExists = (name) => files.has(name) || fileExists.call(host, name);
  host.readFile = (name) => files.get(name) ?? readFile.call(host, name);
  host.directoryExists = (name) => name === join(root, '.readme') || (directoryExists?.call(host, name) ?? true);
  host.getSourceFile = (name, language, onError) => {
    const text = files.get(name);
    return text === undefined ? getSourceFile.call(host, name, language, onError) : ts.createSourceFile(name, text, language);
  };
  return ts.createProgram([...files.keys(), ...roots], options, host, old);
}

/** What the compiler finds wrong in these fragments, each naming its README line. */
let compiled: { options: ts.CompilerOptions; base: ts.Program } | undefined;

function compileProblems(found: Block[]): string[] {
  const entries = { qam: join(root, 'lib', 'index.ts'), testing: join(root, 'lib', 'testing.ts') };
  compiled ??= (() => {
    const options = compilerOptions();
    return { options, base: program(new Map(), options, Object.values(entries)) };
  })();
  const { options, base } = compiled;
  const qamExports = exportsOf(base, entries.qam);
  const testingExports = exportsOf(base, entries.testing);

  const files = new Map(virtual);
  const byFile = new Map<string, Block>();
  found.forEach((block, index) => {
    const declared = topLevelNames(block.code);
    const imports = (names: { name: string; specifier: string }[], from: string): string => {
      const missing = names.filter(({ name }) => !declared.has(name)).map(({ specifier }) => specifier);
      return missing.length === 0 ? '' : `import { ${missing.join(', ')} } from '${from}'; `;
    };
    // One line of imports before the block, so its lines are the README's, one line later.
    const header = `${imports(qamExports, 'qam')}${imports(testingExports, 'qam/testing')}export {};\n`;
    const file = join(root, '.readme', `block-${index}.ts`);
    files.set(file, header + block.code);
    byFile.set(file, block);
  });

  return ts
    .getPreEmitDiagnostics(program(files, options, [], base))
    .filter((diagnostic) => !unusedCodes.has(diagnostic.code))
    .map((diagnostic) => {
      const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
      const file = diagnostic.file?.fileName;
      const block = file === undefined ? undefined : byFile.get(file);
      if (block === undefined || diagnostic.file === undefined || diagnostic.start === undefined) return `${file ?? '?'}: ${message}`;
      const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
      return `README.md:${block.line + line - 1}: TS${diagnostic.code}: ${message}`;
    });
}

describe('README.md', () => {
  it('every TypeScript block compiles under the repository tsconfig (tsconfig.build.json)', () => {
    const found = blocks(['ts', 'typescript']);
    expect(found.length).toBeGreaterThan(10);
    // A failure names the README line. A fragment may use the names declared in `globals` above
    // and every export of qam and qam/testing without importing them; it declares anything else.
    expect(compileProblems(found)).toEqual([]);
  });

  it('the check finds a block that does not compile, and names its line', () => {
    const problems = compileProblems([
      { line: 40, code: "const proxy = new QAMProxy({ serverId: 's' });\nawait proxy.withdraw(100);\n" },
      { line: 90, code: 'await proxy.add(1, 2);\n' },
    ]);
    expect(problems).toEqual([expect.stringMatching(/^README\.md:41: TS4111: Property 'withdraw' comes from an index signature/)]);
  });

  it('shows what the demo prints', async () => {
    const shown = readme.split('\n');
    const start = shown.indexOf('The demo ([samples/demo.ts](samples/demo.ts)) prints:');
    expect(start).toBeGreaterThan(0);
    const block = blocks(['']).find((candidate) => candidate.line > start);
    expect(block).toBeDefined();
    const lines: string[] = [];
    await demo((line) => lines.push(line), 'memory://readme-demo');
    // `npm run demo` first says which broker it found; the uid is new on every run, of one shape.
    const uid = (line: string): string => line.replace(/uid [\w-]{16}\.[0-9a-z]+,/, 'uid <uid>,');
    const expected = ['broker: RabbitMQ on localhost:5672', ...lines].map(uid);
    expect(expected).toContain('callback call started, uid <uid>, state 0');
    expect(block?.code.trimEnd().split('\n').map(uid)).toEqual(expected);
  });
});
