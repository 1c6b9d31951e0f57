// Entry point: read the config, build the app, listen, and close gracefully on signals.
import closeWithGrace from 'close-with-grace';
import { loadConfig, ConfigError } from './config.js';
import { buildApp } from './app.js';
import { BackendUnavailableError } from './engine/index.js';
import { StorageUnavailableError, StoreOpenError } from './jobs/errors.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`gradlens: invalid configuration: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  let app;
  try {
    app = await buildApp(config);
  } catch (err) {
    // Named problems an operator fixes (a backend that cannot load, a GRADLENS_DB that cannot be opened): one line, no stack.
    if (err instanceof BackendUnavailableError || err instanceof StorageUnavailableError || err instanceof StoreOpenError) {
      console.error(`gradlens: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  closeWithGrace({ delay: config.shutdownGraceMs }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'closing after an error');
    else app.log.info({ signal }, 'closing');
    await app.close();
  });
  await app.listen({ port: config.port, host: config.host });
  app.log.info({ backend: app.backend }, `gradlens listening on ${config.host}:${config.port}`);
}

await main();
