// What every result and /health say computed it: the backend a process initialised and the versions. One builder
// for the API process (src/app.ts) and `gradlens worker` (src/worker.ts), so the two never describe it differently.
import type { BackendInfo } from './engine/index.js';
import type { Environment } from './schemas/result.js';
import { GRADLENS_VERSION } from './version.js';

export function environmentOf(backend: BackendInfo): Environment {
  return {
    backend: backend.name,
    tfjsBackend: backend.tfjsBackend,
    tfjsVersion: backend.tfjsVersion,
    gradlensVersion: GRADLENS_VERSION,
    ...(backend.simd !== undefined ? { simd: backend.simd } : {}),
    ...(backend.adapter ? { adapter: backend.adapter } : {}),
  };
}
