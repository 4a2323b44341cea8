import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * What the proxy does with the next request it sees:
 * - `pass`: forwards it;
 * - `refuse-503`: answers `503 Service Unavailable` itself (the server never sees it);
 * - `drop-before`: closes the client's connection before forwarding (never reaches the server);
 * - `drop-after`: forwards it, then closes the client's connection as soon as the server's
 *   answer starts, so the server has acted but the client never learns it;
 * - `delay`: forwards it after `delayMs`.
 */
export type Fault = 'pass' | 'refuse-503' | 'drop-before' | 'drop-after' | 'delay';

/**
 * A TCP proxy on loopback between the client and a real MLflow server, for fault injection.
 * It reads HTTP request lines to count requests and to apply one fault per request; the
 * client's keep-alive connection is closed after any fault so each request starts afresh.
 */
export class FaultyProxy {
  /** Request lines seen (`POST /api/2.0/mlflow/runs/log-batch`), in order. */
  readonly requests: string[] = [];
  /** Decides the fault of each request from its request line; `pass` by default. */
  faultFor: (requestLine: string) => Fault = () => 'pass';
  delayMs = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<FaultyProxy> {
    let proxy: FaultyProxy | undefined;
    const server = createServer((client) => proxy?.handle(client, targetPort));
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        resolve(typeof address === 'object' && address ? address.port : 0);
      });
    });
    proxy = new FaultyProxy(server, port);
    return proxy;
  }

  get uri(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Faults `fault` for the next `count` requests whose line matches `pattern`, then passes again. */
  injectNext(pattern: RegExp, fault: Fault, count: number): void {
    let left = count;
    const previous = this.faultFor;
    this.faultFor = (line) => {
      if (left > 0 && pattern.test(line)) {
        left--;
        return fault;
      }
      return previous(line);
    };
  }

  count(pattern: RegExp): number {
    return this.requests.filter((line) => pattern.test(line)).length;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(client: Socket, targetPort: number): void {
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    client.on('error', () => undefined);
    let upstream: Socket | undefined;
    let buffered = Buffer.alloc(0);
    let decided = false;
    const waiting: Buffer[] = [];
    client.on('data', (chunk: Buffer) => {
      if (decided) {
        if (upstream) upstream.write(chunk);
        else waiting.push(chunk);
        return;
      }
      buffered = Buffer.concat([buffered, chunk]);
      const headEnd = buffered.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      decided = true;
      const head = buffered.subarray(0, headEnd).toString('latin1').split('\r\n');
      const line = (head[0] ?? '').replace(/ HTTP\/1\.[01]$/, '');
      this.requests.push(line);
      // One request per connection: asking the server to close after its answer makes the
      // client open a new connection for the next request, whose line is then read here.
      const rewritten = [...head.filter((header) => !/^connection:/i.test(header)), 'Connection: close'].join('\r\n');
      const request = Buffer.concat([Buffer.from(rewritten, 'latin1'), buffered.subarray(headEnd)]);
      this.apply(this.faultFor(line), client, request, targetPort, (socket) => {
        upstream = socket;
        for (const chunk of waiting.splice(0)) socket.write(chunk);
      });
    });
  }

  private apply(
    fault: Fault,
    client: Socket,
    request: Buffer,
    targetPort: number,
    setUpstream: (socket: Socket) => void,
  ): void {
    if (fault === 'refuse-503') {
      client.end(
        'HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: close\r\n\r\nunavailable\n',
      );
      return;
    }
    if (fault === 'drop-before') {
      client.destroy();
      return;
    }
    const forward = () => {
      const upstream = connect(targetPort, '127.0.0.1');
      this.sockets.add(upstream);
      upstream.on('close', () => {
        this.sockets.delete(upstream);
        client.end();
      });
      upstream.on('error', () => client.destroy());
      upstream.write(request);
      setUpstream(upstream);
      upstream.on('data', (answer: Buffer) => {
        if (fault === 'drop-after') {
          client.destroy();
          upstream.destroy();
          return;
        }
        client.write(answer);
      });
      client.on('close', () => upstream.destroy());
    };
    if (fault === 'delay') setTimeout(forward, this.delayMs);
    else forward();
  }
}
