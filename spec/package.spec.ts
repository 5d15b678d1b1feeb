import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(root, 'node_modules', '.bin', 'tsc');

interface Packed {
  filename: string;
  files: { path: string }[];
}

/**
 * The package as npm packs it (its `prepack` builds it), installed into an application of its own
 * next to nothing but its runtime dependencies: what a user gets from `npm install qam`.
 */
describe('the packed package', () => {
  let dir: string;
  let packed: Packed;
  let app: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qam-pack-'));
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
    const [first] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Packed[];
    if (first === undefined) throw new Error('npm pack packed nothing');
    packed = first;
    app = join(dir, 'app');
    const installed = join(app, 'node_modules', 'qam');
    mkdirSync(installed, { recursive: true });
    mkdirSync(join(app, 'node_modules', '@types'));
    await run('tar', ['-xzf', join(dir, packed.filename), '-C', installed, '--strip-components=1']);
    const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const dependency of [...Object.keys(manifest.dependencies), '@types/node']) {
      mkdirSync(dirname(join(app, 'node_modules', dependency)), { recursive: true });
      symlinkSync(join(root, 'node_modules', dependency), join(app, 'node_modules', dependency));
    }
    writeFileSync(join(app, 'package.json'), '{ "type": "commonjs" }\n');
  }, 240_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is built, with its license, and without tests or sources', () => {
    const paths = packed.files.map((file) => file.path);
    expect(paths).toEqual(
      expect.arrayContaining(['LICENSE', 'README.md', 'package.json', 'dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/lib/testing.js']),
    );
    expect(paths.filter((path) => !/^(LICENSE|README\.md|CHANGELOG\.md|package\.json|dist\/lib\/.*)$/.test(path))).toEqual([]);
    expect(paths.filter((path) => path.endsWith('.ts') && !path.endsWith('.d.ts'))).toEqual([]);
  });

  it('installs the qam command', async () => {
    const installed = join(app, 'node_modules', 'qam');
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    const { stdout } = await run(process.execPath, [join(installed, manifest.bin['qam'] ?? 'missing'), '--version'], { cwd: app });
    const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    expect(stdout).toBe(`${version}\n`);
  });

  it('ships source maps only with their sources inlined', () => {
    const maps = packed.files.map((file) => file.path).filter((path) => path.endsWith('.map'));
    for (const path of maps) {
      const map = JSON.parse(readFileSync(join(app, 'node_modules', 'qam', path), 'utf8')) as {
        sources: string[];
        sourcesContent?: string[];
      };
      expect({ path, inlined: map.sourcesContent?.length }).toEqual({ path, inlined: map.sources.length });
    }
  });

  const callOnEmbeddedBroker = (load: string): string => `
${load}
(async () => {
  const { url, close } = testing.startTestBroker();
  const server = new qam.QAMServer({ serverId: 'pack', url }).registerFunction((a, b) => a + b, 'add');
  await server.serve();
  const proxy = new qam.QAMProxy({ serverId: 'pack', url });
  console.log('add(2, 3) = ' + (await proxy['add'](2, 3)));
  await proxy.close();
  await server.close();
  close();
})();
`;

  it('is imported by an ES module', async () => {
    writeFileSync(join(app, 'esm.mjs'), callOnEmbeddedBroker("import * as qam from 'qam';\nimport * as testing from 'qam/testing';"));
    const { stdout } = await run(process.execPath, ['esm.mjs'], { cwd: app });
    expect(stdout).toBe('add(2, 3) = 5\n');
  });

  it('is required by a CommonJS module (Node >= 20.19)', async () => {
    writeFileSync(join(app, 'cjs.cjs'), callOnEmbeddedBroker("const qam = require('qam');\nconst testing = require('qam/testing');"));
    const { stdout } = await run(process.execPath, ['cjs.cjs'], { cwd: app });
    expect(stdout).toBe('add(2, 3) = 5\n');
  });

  const typed = (load: string): string => `${load}
const proxy = new QAMProxy<{ add: (a: number, b: number) => number }>({ serverId: 'pack' });
export const sum: Promise<number> = proxy.add(2, 3);
// @ts-expect-error the types came along
export const wrong: Promise<string> = proxy.add(2, 3);
`;

  /** Type-checks the app's files with the consumer's `module` setting, its libraries' types included. */
  async function typecheck(module: string, files: string[]): Promise<string> {
    const options = ['--noEmit', '--strict', '--exactOptionalPropertyTypes', '--module', module, '--target', 'es2022', '--types', 'node'];
    try {
      await run(tsc, [...options, ...files], { cwd: app });
      return '';
    } catch (error) {
      return (error as { stdout: string }).stdout;
    }
  }

  it('type-checks in TypeScript ES modules (module node16 or nodenext) and CommonJS ones (nodenext), libraries included', async () => {
    writeFileSync(
      join(app, 'esm.mts'),
      typed("import { QAMProxy } from 'qam';\nimport { startTestBroker } from 'qam/testing';\nvoid startTestBroker;"),
    );
    writeFileSync(join(app, 'cjs.cts'), typed("import { QAMProxy } from 'qam';"));
    expect(await typecheck('nodenext', ['esm.mts', 'cjs.cts'])).toBe('');
    // node16 predates require(esm): there a CommonJS file must import() the package.
    const node16 = (await typecheck('node16', ['esm.mts', 'cjs.cts'])).trim().split('\n');
    expect(node16).toEqual([expect.stringMatching(/^cjs\.cts\(1,\d+\): error TS1479/)]);
  }, 240_000);
});
