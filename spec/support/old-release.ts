/**
 * A past release of qam, built on demand from the git history, for the tests that run old and
 * new peers against each other. Nothing generated is stored in git: the release's `lib/` is taken
 * with `git archive` into a temporary directory whose `node_modules` is a link to this checkout's
 * (the same dependencies), and compiled there. A build is kept for the next run (its commit and
 * the checkout name it); the first takes a few seconds to a minute.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { uniqueName } from './broker.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The last release before the native wire got its version header (`x-qam-wire`, wire 2): main
 * as it was then (package version 0.1.0). Its messages carry no `x-qam-*` header: wire 1.
 */
export const wire1Release = '83f488f26c76e0a83d96acce40c6c5165b9e4d5b';

/** Where a built release's `index.js` is, to `import()` it. */
export interface ReleaseBuild {
  commit: string;
  /** The compiled lib/index.js of the release. */
  index: string;
}

/**
 * Builds lib/ of `commit` (once per commit and checkout). Needs the commit in the local history:
 * a shallow clone fails with a message saying so (CI clones in full).
 */
export async function buildRelease(commit: string): Promise<ReleaseBuild> {
  const checkout = createHash('sha256').update(root).digest('hex').slice(0, 12);
  const dir = join(tmpdir(), `qam-release-${commit.slice(0, 12)}-${checkout}`);
  const index = join(dir, 'out', 'lib', 'index.js');
  try {
    await access(index);
    return { commit, index };
  } catch {
    // Not built yet.
  }
  try {
    await run('git', ['-C', root, 'cat-file', '-e', `${commit}^{commit}`]);
  } catch {
    throw new Error(`commit ${commit} is not in this clone's history: the wire-version tests need a full clone (git fetch --unshallow)`);
  }
  // Outside any node_modules: TypeScript compiles nothing found under one.
  const work = join(tmpdir(), uniqueName('qam-release'));
  const src = join(work, 'src');
  await mkdir(src, { recursive: true });
  try {
    await symlink(join(root, 'node_modules'), join(work, 'node_modules'), 'dir');
    const archive = join(work, 'src.tar');
    await run('git', ['-C', root, 'archive', '--format=tar', '-o', archive, commit, 'lib', 'tsconfig.json', 'tsconfig.build.json']);
    await run('tar', ['-xf', archive, '-C', src]);
    const config = {
      extends: join(src, 'tsconfig.build.json'),
      compilerOptions: { outDir: join(work, 'out'), rootDir: src, declaration: false, sourceMap: false },
      files: [join(src, 'lib', 'index.ts'), join(src, 'lib', 'server', 'thread-worker.js')],
      include: [],
    };
    await writeFile(join(work, 'tsconfig.json'), JSON.stringify(config));
    await writeFile(join(work, 'package.json'), JSON.stringify({ type: 'module' }));
    await run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(work, 'tsconfig.json')], {
      maxBuffer: 16 * 1024 * 1024,
    });
    await rm(dir, { recursive: true, force: true });
    await rename(work, dir);
  } catch (error) {
    await rm(work, { recursive: true, force: true });
    throw error;
  }
  return { commit, index };
}
