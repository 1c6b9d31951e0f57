// Generates the OpenAPI 3.1 document from the route schemas, in a stable textual form.
import { buildApp } from './app.js';
import { loadConfig } from './config.js';

export async function generateOpenApi(): Promise<string> {
  // No workers and no database file: only the route schemas are needed.
  const app = await buildApp(loadConfig({}, { backend: 'cpu', jobs: { workers: 0, db: ':memory:' } }), { logger: false });
  try {
    await app.ready();
    return `${JSON.stringify(app.swagger(), null, 2)}\n`;
  } finally {
    await app.close();
  }
}
