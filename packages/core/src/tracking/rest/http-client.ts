import { readFileSync } from 'node:fs';
import { Agent, type Dispatcher } from 'undici';
import { InterleaveError } from '../../errors.js';
import { isRetryableStatus, MlflowApiError, MlflowUnreachableError } from './errors.js';

/** How the client talks to one tracking server; the defaults follow MLflow's own client. */
export interface HttpClientOptions {
  /** Where credentials and TLS settings come from (MLflow's variable names); `process.env` by default. */
  env?: NodeJS.ProcessEnv;
  /** Per attempt; `MLFLOW_HTTP_REQUEST_TIMEOUT` (seconds) or 120 s. */
  timeoutMs?: number;
  /** Attempts per request in all; `MLFLOW_HTTP_REQUEST_MAX_RETRIES` + 1 or 8. */
  maxAttempts?: number;
  /** First backoff; doubles per attempt up to `maxDelayMs`, each wait drawn uniformly below it. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** For tests: the jitter's source. */
  random?: () => number;
}

export interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  json?: unknown;
  body?: Uint8Array | string;
  /**
   * False for writes that must not land twice (log-batch): a request that may have reached the
   * server before its connection broke is then not sent again here; the caller checks first.
   */
  idempotent?: boolean;
  /** Read the answer as bytes (artifact downloads) instead of JSON. */
  binary?: boolean;
}

/** Network failures that mean the request never reached the server, so sending it again is safe. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * A small HTTP client for MLflow's REST API over Node's fetch: auth from MLflow's variables,
 * TLS verified unless `MLFLOW_TRACKING_INSECURE_TLS=true`, a time limit per attempt, and
 * retries with exponential backoff and full jitter on 429, 5xx and network errors, never on
 * other 4xx. Credentials live only in the Authorization header: never in a message.
 */
export class MlflowHttpClient {
  /** The server URI without credentials, query or trailing slash: safe to print. */
  readonly displayUri: string;
  private readonly base: string;
  private readonly authorization: string | undefined;
  private readonly dispatcher: Dispatcher | undefined;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly random: () => number;

  constructor(uri: string, options: HttpClientOptions = {}) {
    const env = options.env ?? process.env;
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new InterleaveError(`invalid MLflow tracking URI '${stripCredentials(uri)}'`);
    }
    const embeddedUser = decodeURIComponent(url.username);
    const embeddedPassword = decodeURIComponent(url.password);
    url.username = '';
    url.password = '';
    url.search = '';
    url.hash = '';
    this.base = url.href.replace(/\/+$/, '');
    this.displayUri = this.base;
    this.authorization = authorizationHeader(env, embeddedUser, embeddedPassword);
    this.dispatcher = tlsDispatcher(url, env);
    this.timeoutMs = options.timeoutMs ?? secondsFromEnv(env, 'MLFLOW_HTTP_REQUEST_TIMEOUT', 120) * 1000;
    this.maxAttempts = options.maxAttempts ?? secondsFromEnv(env, 'MLFLOW_HTTP_REQUEST_MAX_RETRIES', 7) + 1;
    this.baseDelayMs = options.baseDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
    this.random = options.random ?? Math.random;
  }

  /** A JSON call of `/api/2.0/mlflow/<endpoint>`. */
  api<T>(method: 'GET' | 'POST', endpoint: string, options: RequestOptions = {}): Promise<T> {
    return this.request(method, `/api/2.0/mlflow/${endpoint}`, options) as Promise<T>;
  }

  async request(method: string, path: string, options: RequestOptions = {}): Promise<unknown> {
    const idempotent = options.idempotent ?? true;
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= this.maxAttempts;
      let response: Response;
      let body: unknown;
      try {
        response = await this.send(method, path, options);
        // The body may break off too (the time limit covers it): that is a network failure.
        if (response.ok) body = await readBody(response, options.binary ?? false);
      } catch (error) {
        const failure = this.describeNetworkError(method, path, error);
        if (last || (failure.maybeApplied && !idempotent)) throw failure;
        await this.backoff(attempt);
        continue;
      }
      if (response.ok) return body;
      const failure = await this.describeHttpError(method, path, response);
      if (last || !isRetryableStatus(response.status)) throw failure;
      await this.backoff(attempt, retryAfterMs(response));
    }
  }

  async close(): Promise<void> {
    await this.dispatcher?.close();
  }

  private async send(method: string, path: string, options: RequestOptions): Promise<Response> {
    const url = new URL(this.base + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = {};
    if (this.authorization) headers.Authorization = this.authorization;
    let body: string | Uint8Array | undefined;
    if (options.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(options.json);
    } else if (options.body !== undefined) {
      headers['Content-Type'] = 'application/octet-stream';
      body = options.body;
    }
    const init: RequestInit & { dispatcher?: Dispatcher } = {
      method,
      headers,
      body,
      signal: AbortSignal.timeout(this.timeoutMs),
      redirect: 'error',
    };
    if (this.dispatcher) init.dispatcher = this.dispatcher;
    const response = await fetch(url, init);
    return response;
  }

  private describeNetworkError(method: string, path: string, error: unknown): MlflowUnreachableError {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const code = cause?.code ?? (error as NodeJS.ErrnoException).code;
    const timedOut = (error as Error).name === 'TimeoutError' || (error as Error).name === 'AbortError';
    const reason = timedOut
      ? `no answer within ${this.timeoutMs / 1000} s`
      : (code ?? cause?.message ?? (error as Error).message);
    const maybeApplied = !(code !== undefined && NOT_SENT_CODES.has(code));
    return new MlflowUnreachableError(
      `MLflow server ${this.displayUri} is unreachable (${reason}) for ${method} ${shortPath(path)}`,
      maybeApplied,
    );
  }

  private async describeHttpError(method: string, path: string, response: Response): Promise<MlflowApiError> {
    const text = await response.text().catch(() => '');
    let errorCode = `HTTP_${response.status}`;
    let detail = '';
    try {
      const parsed = JSON.parse(text) as { error_code?: string; message?: string };
      if (typeof parsed.error_code === 'string') errorCode = parsed.error_code;
      if (typeof parsed.message === 'string') detail = parsed.message;
    } catch {
      // Not MLflow's error JSON (a proxy's page): its first line, if short, still helps.
      const line = text.split('\n')[0]?.trim() ?? '';
      if (line.length > 0 && line.length < 200 && !line.startsWith('<')) detail = line;
    }
    if (response.status === 401) {
      return new MlflowApiError(
        `MLflow server ${this.displayUri} rejected the credentials (401 Unauthorized): ${this.credentialHint()}`,
        401,
        errorCode === 'HTTP_401' ? 'UNAUTHENTICATED' : errorCode,
      );
    }
    if (response.status === 403) {
      return new MlflowApiError(
        `MLflow server ${this.displayUri} denied ${method} ${shortPath(path)} (403 Forbidden): the user lacks the permission`,
        403,
        errorCode === 'HTTP_403' ? 'PERMISSION_DENIED' : errorCode,
      );
    }
    const oneLine = detail.split('\n')[0]?.slice(0, 500) ?? '';
    return new MlflowApiError(
      `MLflow server ${this.displayUri} answered ${response.status} ${errorCode} to ${method} ${shortPath(path)}${oneLine ? `: ${oneLine}` : ''}`,
      response.status,
      errorCode,
    );
  }

  private credentialHint(): string {
    if (this.authorization?.startsWith('Bearer')) return 'check MLFLOW_TRACKING_TOKEN';
    if (this.authorization) return 'check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD';
    return 'set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN';
  }

  private async backoff(attempt: number, serverAskedMs?: number): Promise<void> {
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    const delay = serverAskedMs !== undefined ? Math.min(serverAskedMs, this.maxDelayMs) : this.random() * ceiling;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

async function readBody(response: Response, binary: boolean): Promise<unknown> {
  if (binary) return new Uint8Array(await response.arrayBuffer());
  const text = await response.text();
  try {
    return text.trim() === '' ? {} : JSON.parse(text);
  } catch {
    throw new InterleaveError(`the answer is not JSON: ${JSON.stringify(text.slice(0, 80))}`);
  }
}

function authorizationHeader(
  env: NodeJS.ProcessEnv,
  embeddedUser: string,
  embeddedPassword: string,
): string | undefined {
  const token = env.MLFLOW_TRACKING_TOKEN;
  if (token) return `Bearer ${token}`;
  const user = env.MLFLOW_TRACKING_USERNAME || embeddedUser;
  const password = env.MLFLOW_TRACKING_PASSWORD || embeddedPassword;
  if (!user && !password) return undefined;
  if (!user || !password) {
    throw new InterleaveError(
      'MLflow basic auth needs both MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD; only one is set',
    );
  }
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}

/**
 * MLflow's TLS settings: `MLFLOW_TRACKING_INSECURE_TLS=true` skips verification and
 * `MLFLOW_TRACKING_SERVER_CERT_PATH` names a CA bundle (they exclude each other, as in MLflow).
 */
function tlsDispatcher(url: URL, env: NodeJS.ProcessEnv): Dispatcher | undefined {
  const insecure = (env.MLFLOW_TRACKING_INSECURE_TLS ?? '').toLowerCase() === 'true';
  const caPath = env.MLFLOW_TRACKING_SERVER_CERT_PATH;
  if (insecure && caPath) {
    throw new InterleaveError(
      'MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH are both set; MLflow allows only one',
    );
  }
  if (url.protocol !== 'https:' || (!insecure && !caPath)) return undefined;
  if (insecure) return new Agent({ connect: { rejectUnauthorized: false } });
  let ca: Buffer;
  try {
    ca = readFileSync(caPath as string);
  } catch {
    throw new InterleaveError(`cannot read MLFLOW_TRACKING_SERVER_CERT_PATH '${caPath}'`);
  }
  return new Agent({ connect: { ca } });
}

function secondsFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text.trim() === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new InterleaveError(`${name} must be a number ≥ 0, got '${text}'`);
  return value;
}

function retryAfterMs(response: Response): number | undefined {
  const header = response.headers.get('retry-after');
  if (header === null) return undefined;
  const seconds = Number(header);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

/** The path without its query string: artifact paths are fine to show, query values may not be. */
function shortPath(path: string): string {
  return path.split('?')[0] ?? path;
}

/** `scheme://user:pass@host` → `scheme://host`, for messages about a URI that did not parse. */
export function stripCredentials(uri: string): string {
  return uri.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/@]*@/, '$1');
}
