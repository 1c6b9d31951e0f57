// The package version, read once from package.json.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
function findVersion(): string {
  for (const path of ['../package.json', '../../package.json']) {
    try {
      const pkg = require(path) as { name?: string; version?: string };
      if (pkg.name === 'gradlens' && pkg.version) return pkg.version;
    } catch {
      // try the next location: src/ (tsx) and dist/src/ (compiled) sit at different depths
    }
  }
  return '0.0.0';
}
export const GRADLENS_VERSION = findVersion();
