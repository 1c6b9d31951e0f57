#!/usr/bin/env bash
# Proves the pure-npm contract on a machine where the native build cannot succeed: `npm ci` exits 0, no addon
# is built, and the service starts on wasm and answers the textbook analysis with the closed-form gradient.
#
#   scripts/prove-pure-npm.sh        (run by .ci/run after its own `npm ci`, whose npm cache makes this offline)
#
# "Cannot succeed" is made real, not simulated: in a private mount namespace (unshare; root, or unprivileged
# user namespaces) the directories holding OpenBLAS's headers and libraries are covered with empty tmpfs, so
# the addon's compile fails with "cblas.h: No such file or directory", exactly as on a machine without
# libopenblas-dev. Where no namespace can be made, a cblas.h that is an #error is put first on the include
# path (CPATH) instead: the compile still really fails, with that message. Everything happens in a fresh
# copy of the tracked files in a temporary directory; the checkout is not touched.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

log() { echo "prove-pure-npm: $*"; }
fail() { echo "prove-pure-npm: FAILED: $*" >&2; exit 1; }

# The directories that hold the real files behind cblas.h and libopenblas, when they are OpenBLAS's own.
openblas_dirs() {
  local hdr lib
  hdr="$(echo '#include <cblas.h>' | cc -x c -M - 2>/dev/null | tr ' \\' '\n\n' | grep '/cblas\.h$' | head -1 || true)"
  [ -n "$hdr" ] && dirname "$(readlink -f "$hdr")"
  for lib in $(ldconfig -p 2>/dev/null | awk '/libopenblas/ { print $NF }'); do dirname "$(readlink -f "$lib")"; done
}

# A cblas.h that stops the compile, first on the include path.
shadow_cblas() {
  mkdir -p "$WORK/shadow"
  echo '#error "cblas.h hidden by scripts/prove-pure-npm.sh: a machine without libopenblas-dev"' >"$WORK/shadow/cblas.h"
  export CPATH="$WORK/shadow${CPATH:+:$CPATH}"
  log "cblas.h shadowed by an #error through CPATH"
}

hide_openblas() {
  local dir covered=0
  for dir in $(openblas_dirs | sort -u); do
    case "$(basename "$dir")" in
      *openblas*) mount -t tmpfs -o size=1m,mode=755 tmpfs "$dir" && covered=1 && log "covered $dir" ;;
      *) log "not covering $dir (not OpenBLAS's own directory)" ;;
    esac
  done
  [ "$covered" = 1 ] || shadow_cblas
}

# Re-run inside a private mount namespace when one can be made (PROVE_PURE_NPM_INNER=none forces the CPATH way).
if [ "${PROVE_PURE_NPM_INNER:-}" = "" ]; then
  if [ "$(id -u)" = 0 ] && unshare --mount --propagation private true 2>/dev/null; then
    exec env PROVE_PURE_NPM_INNER=ns unshare --mount --propagation private "$0" "$@"
  elif unshare --mount --map-root-user true 2>/dev/null; then
    exec env PROVE_PURE_NPM_INNER=ns unshare --mount --map-root-user "$0" "$@"
  fi
  log "no mount namespace available"
  PROVE_PURE_NPM_INNER=none
fi
[ "$PROVE_PURE_NPM_INNER" = none ] && CPATH_ONLY=1

WORK="$(mktemp -d /tmp/gradlens-pure-npm.XXXXXX)"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ "${CPATH_ONLY:-}" = 1 ]; then shadow_cblas; else hide_openblas; fi

# A clean copy of the tracked files, as a fresh clone would have them (with uncommitted edits).
mkdir "$WORK/repo"
(cd "$ROOT" && git ls-files -z | tar --null -T - -cf -) | tar -xf - -C "$WORK/repo"
cd "$WORK/repo"

# 1. The native build cannot succeed here, for the reason a machine without OpenBLAS gives.
if node native/build.mjs >"$WORK/native-build.log" 2>&1; then
  fail "the native build succeeded with OpenBLAS hidden; this proves nothing"
fi
grep -q 'cblas\.h' "$WORK/native-build.log" || { tail -20 "$WORK/native-build.log"; fail "the native build failed, but not on cblas.h"; }
log "native build fails as on a machine without OpenBLAS: $(grep -m1 'cblas\.h' "$WORK/native-build.log" | sed 's/^ *//')"
rm -rf native/build

# 2. npm ci succeeds anyway, from the cache the first install filled.
npm ci --offline --no-audit --no-fund >"$WORK/npm-ci.log" 2>&1 || { tail -30 "$WORK/npm-ci.log"; fail "npm ci exited non-zero"; }
grep -q 'native kernels not built' "$WORK/npm-ci.log" || { tail -30 "$WORK/npm-ci.log"; fail "npm ci did not report the skipped native build"; }
[ ! -e native/build/Release/gradlens_native.node ] || fail "an addon was built"
log "npm ci exited 0 without the addon"

# 3. The service starts on the fallback and computes.
npm run build >"$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log"; fail "npm run build"; }
PORT="$(node -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); })")"
PORT="$PORT" HOST=127.0.0.1 GRADLENS_BACKEND=auto GRADLENS_DB=:memory: GRADLENS_WORKERS=1 LOG_LEVEL=warn \
  node dist/src/server.js >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
node --input-type=module - "$PORT" <<'EOF' || { tail -30 "$WORK/server.log"; fail "the service did not answer an analysis on wasm"; }
const base = `http://127.0.0.1:${process.argv[2]}`;
const deadline = Date.now() + 60_000;
let health;
while (Date.now() < deadline) {
  try { health = await (await fetch(`${base}/health`)).json(); break; } catch { await new Promise((r) => setTimeout(r, 200)); }
}
if (!health) throw new Error('no /health within 60 s');
if (health.environment?.backend !== 'wasm') throw new Error(`backend ${health.environment?.backend}, expected wasm`);
const spec = {
  network: { depth: 20, width: 1, activation: 'sigmoid', outputActivation: 'sigmoid', useBias: false, init: { weights: { name: 'constant', value: 0.17 } } },
  data: { source: 'inline', x: [[1]] }, loss: 'output',
};
const res = await fetch(`${base}/v1/analyses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) });
const body = await res.json();
if (res.status !== 200) throw new Error(`POST /v1/analyses: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
// The closed form of the chain's first-layer gradient: prod over layers of sigmoid'(h_l) * 0.17, times x = 1.
let a = 1, g = 1;
const h = [];
for (let l = 0; l < 20; l++) { h.push(0.17 * a); a = 1 / (1 + Math.exp(-h[l])); }
for (let l = 19; l >= 0; l--) { const s = 1 / (1 + Math.exp(-h[l])); g *= s * (1 - s) * (l > 0 ? 0.17 : 1); }
const got = body.result.layers[0].weightGradNorm;
if (body.environment.backend !== 'wasm' || !(Math.abs(got - g) / g < 1e-4)) throw new Error(`backend ${body.environment.backend}, first-layer gradient ${got}, closed form ${g}`);
console.log(`prove-pure-npm: the service answers on wasm: first-layer gradient ${got.toExponential(4)} (closed form ${g.toExponential(4)})`);
EOF
log "ok: npm ci and the service work where the native build cannot"
