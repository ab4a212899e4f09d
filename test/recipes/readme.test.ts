import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The ```ts blocks of the README's recipes section, in order. */
function recipeSnippets(): string[] {
  const readme = readFileSync(join(repo, 'README.md'), 'utf8');
  const a = readme.indexOf('<!-- recipes:begin -->');
  const b = readme.indexOf('<!-- recipes:end -->');
  assert.ok(a >= 0 && b > a, 'README has a recipes section');
  const section = readme.slice(a, b);
  return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

describe('recipes/README snippets', function () {
  this.timeout(60_000);

  it('run as written (setup + every snippet, in one module, against the sources)', async () => {
    const snippets = recipeSnippets();
    assert.ok(snippets.length >= 8, `found ${snippets.length} snippets`);
    const src = pathToFileURL(join(repo, 'src')).href;
    const code = snippets.join('\n')
      .replace(/from 'conclave\/recipes'/g, `from '${src}/api/recipes/index.ts'`)
      .replace(/from 'conclave'/g, `from '${src}/index.ts'`)
      + '\nawait selector.close();\nawait session.close();\nawait member.stop();\nconsole.log("README-SNIPPETS-OK");\n';
    const dir = mkdtempSync(join(os.tmpdir(), 'conclave-readme-'));
    try {
      const file = join(dir, 'snippets.mts');
      writeFileSync(file, code);
      const tsx = join(repo, 'node_modules', '.bin', 'tsx');
      const out = await new Promise<string>((resolveRun, reject) => {
        execFile(tsx, [file], { cwd: repo, timeout: 45_000 }, (err, stdout, stderr) => {
          if (err) reject(new Error(`snippets failed: ${err.message}\n${stderr}\n${stdout}`));
          else resolveRun(stdout);
        });
      });
      assert.match(out, /README-SNIPPETS-OK/);
      assert.match(out, /leader with fencing token \d+n/);
      assert.match(out, /holding with token \d+n/);
      assert.match(out, /call http:\/\/10\.0\.0\.5:8080\//);
      assert.match(out, /maxConnections undefined → 100/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
