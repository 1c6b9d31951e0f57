// A minimal server-sent-events writer on Fastify's raw response, with keep-alives and a registry for shutdown.
import type { FastifyReply, FastifyRequest } from 'fastify';

export class EventStream {
  private nextId = 1;
  private keepAlive: NodeJS.Timeout;
  private readonly closeHandlers: (() => void)[] = [];
  closed = false;

  constructor(request: FastifyRequest, private readonly reply: FastifyReply, keepAliveMs = 15_000) {
    // The stream outlives the handler: Fastify must not send or serialise anything of its own.
    reply.hijack();
    // Headers that hooks have set so far (CORS, security headers) would be lost with the hijack.
    const earlier = Object.fromEntries(Object.entries(reply.getHeaders()).filter(([, v]) => v !== undefined));
    reply.raw.writeHead(200, {
      ...earlier,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // Proxies such as nginx buffer responses unless told not to.
      'x-accel-buffering': 'no',
      'x-request-id': request.id,
    });
    reply.raw.write('retry: 2000\n\n');
    this.keepAlive = setInterval(() => this.comment('keep-alive'), keepAliveMs);
    this.keepAlive.unref();
    request.raw.on('close', () => this.close());
    reply.raw.on('error', () => this.close());
  }

  /** One event; data is JSON on one line (JSON.stringify never emits raw newlines). */
  send(event: string, data: unknown): void {
    if (this.closed) return;
    this.reply.raw.write(`id: ${this.nextId++}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  comment(text: string): void {
    if (!this.closed) this.reply.raw.write(`: ${text}\n\n`);
  }

  onClose(handler: () => void): void {
    if (this.closed) handler();
    else this.closeHandlers.push(handler);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepAlive);
    if (!this.reply.raw.writableEnded) this.reply.raw.end();
    for (const handler of this.closeHandlers.splice(0)) handler();
  }
}

/** Open streams of one app, so that closing the app ends them instead of waiting on them forever. */
export class EventStreams {
  private readonly open = new Set<EventStream>();

  add(stream: EventStream): void {
    this.open.add(stream);
    stream.onClose(() => this.open.delete(stream));
  }

  get size(): number {
    return this.open.size;
  }

  closeAll(): void {
    for (const stream of [...this.open]) stream.close();
  }
}
