// Generates the OpenAPI 3.1 document from the route schemas, in a stable textual form.
import { buildApp } from './app.js';
import { loadConfig } from './config.js';

export async function generateOpenApi(): Promise<string> {
  const app = await buildApp(loadConfig({}, { backend: 'cpu' }), { logger: false });
  try {
    await app.ready();
    return `${JSON.stringify(app.swagger(), null, 2)}\n`;
  } finally {
    await app.close();
  }
}
