// A TCP proxy the test controls, in front of a real PostgreSQL or Redis: stop() refuses new connections and cuts
// the open ones (the server "goes away"), start() serves again on the same port (it "comes back").
import { createServer, connect, type Server, type Socket } from 'node:net';
import { freePort } from './server.js';

export interface TcpProxy {
  port: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  close(): Promise<void>;
}

export async function tcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  const proxy: TcpProxy = {
    port,
    async start() {
      if (server) return;
      server = createServer((client) => {
        const upstream = connect(target.port, target.host);
        track(client);
        track(upstream);
        client.pipe(upstream).pipe(client);
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      });
      await new Promise<void>((resolve, reject) => server!.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
    },
    async stop() {
      const s = server;
      server = undefined;
      for (const socket of sockets) socket.destroy();
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    close: () => proxy.stop(),
  };
  await proxy.start();
  return proxy;
}
