// Builds native/build/Release/gradlens_native.node with node-gyp; with --optional a failed build is only a warning.
//
//   node native/build.mjs             build, fail loudly (npm run build:native)
//   node native/build.mjs --optional  build if the toolchain and libopenblas-dev are there, else warn and exit 0
//                                     (postinstall); GRADLENS_SKIP_NATIVE=1 skips it altogether
//
// Needs python3, make, a C compiler and the OpenBLAS headers (Debian/Ubuntu: apt-get install -y python3
// make g++ libopenblas-dev). Offline builds use the Node headers installed next to the node binary
// (/usr/include/node for Debian's nodejs, /usr/local/include/node for the official images).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const optional = process.argv.includes('--optional');
const addon = join(here, 'build', 'Release', 'gradlens_native.node');

function giveUp(message) {
  if (optional) {
    console.warn(`gradlens: native kernels not built (${message}). gradlens runs without them; ` +
      'to build them install python3 make g++ libopenblas-dev and run `npm run build:native`.');
    process.exit(0);
  }
  console.error(`gradlens: native kernels not built: ${message}`);
  process.exit(1);
}

if (optional && process.env.GRADLENS_SKIP_NATIVE === '1') {
  console.warn('gradlens: GRADLENS_SKIP_NATIVE=1, native kernels not built');
  process.exit(0);
}

/** npm puts its bundled node-gyp in npm_config_node_gyp for scripts; outside npm, look where npm keeps it. */
function findNodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed as a package: fine
  }
  const prefix = join(dirname(process.execPath), '..');
  candidates.push(join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((c) => c && existsSync(c));
}

const nodeGyp = findNodeGyp();
if (nodeGyp === undefined) giveUp('node-gyp not found (it ships with npm)');

const args = [nodeGyp, 'rebuild'];
if (!process.env.npm_config_nodedir) {
  const prefix = join(dirname(process.execPath), '..');
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
}
// In --optional mode node-gyp's chatter is kept back and only the end of it shown on failure.
const build = spawnSync(process.execPath, args, {
  cwd: here,
  stdio: optional ? ['ignore', 'pipe', 'pipe'] : 'inherit',
  encoding: 'utf8',
  maxBuffer: 1 << 24,
});
if (build.error) giveUp(build.error.message);
if (build.status !== 0) {
  if (optional) console.warn(`${build.stdout ?? ''}${build.stderr ?? ''}`.trimEnd().split('\n').slice(-12).join('\n'));
  giveUp(`node-gyp exited with ${build.status ?? build.signal}`);
}

// A library missing at run time (libopenblas0) shows only when loading, so load it once here.
const check = spawnSync(
  process.execPath,
  ['-e', `const a = require(${JSON.stringify(addon)}); const i = a.info(); console.log('gradlens: native kernels built: ' + i.config)`],
  { stdio: 'inherit' },
);
if (check.status !== 0) giveUp(`${addon} was built but does not load`);
