// Compute worker entry when gradlens runs from its TypeScript sources (vitest, `npm run dev`, `node --import tsx`):
// registers tsx's loader in this worker thread, then loads worker.ts. The build (dist/) starts worker.js directly.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
