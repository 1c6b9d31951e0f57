// HTTP client for the gradlens API: API key handling, error bodies, ETag polling and server-sent events.

const KEY_STORAGE = 'gradlens.apiKey';

/** The API key the user entered, kept in localStorage so a reload keeps working. */
export function getApiKey(): string {
  try {
    return localStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    return '';
  }
}

export function setApiKey(key: string): void {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    // storage disabled (private mode): the key lives only for this page
  }
}

/** An error body in the API's shape ({ statusCode, code, error, message, field?, limit? }). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly body?: unknown,
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

function authHeaders(): Record<string, string> {
  const key = getApiKey();
  return key ? { authorization: `Bearer ${key}` } : {};
}

async function toApiError(res: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    // not JSON (a proxy's page): fall back to the status line
  }
  const b = (body ?? {}) as Record<string, unknown>;
  const retry = Number(res.headers.get('retry-after'));
  return new ApiError(
    res.status,
    typeof b.code === 'string' ? b.code : `HTTP_${res.status}`,
    typeof b.message === 'string' ? b.message : `${res.status} ${res.statusText}`,
    typeof b.field === 'string' ? b.field : undefined,
    body,
    Number.isFinite(retry) && retry > 0 ? retry : undefined,
  );
}

export interface ApiResponse<T> {
  status: number;
  data: T;
  headers: Headers;
}

/** One request; non-2xx answers throw ApiError with the server's code and message. */
export async function request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: { accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...authHeaders(), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, 'NETWORK', `cannot reach the server (${(err as Error).message})`);
  }
  if (!res.ok) throw await toApiError(res);
  const text = await res.text();
  return { status: res.status, data: (text ? JSON.parse(text) : null) as T, headers: res.headers };
}

export type Conditional<T> = { changed: false } | { changed: true; data: T; etag: string | null };

/**
 * GET that sends the ETag of the copy we already have: an unchanged job costs the server a 304 and no body.
 * The browser's own cache is bypassed ('no-store') so that we, not it, decide when a copy is current.
 */
export async function getIfChanged<T>(path: string, etag: string | null): Promise<Conditional<T>> {
  let res: Response;
  try {
    res = await fetch(path, {
      headers: { accept: 'application/json', ...authHeaders(), ...(etag ? { 'if-none-match': etag } : {}) },
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, 'NETWORK', `cannot reach the server (${(err as Error).message})`);
  }
  if (res.status === 304) return { changed: false };
  if (!res.ok) throw await toApiError(res);
  return { changed: true, data: (await res.json()) as T, etag: res.headers.get('etag') };
}

/**
 * URL for EventSource, which cannot send headers: the key goes in the documented `access_token` query
 * parameter (accepted by the server once API keys are enforced). Without a key the URL is unchanged.
 */
export function eventsUrl(path: string): string {
  const key = getApiKey();
  if (!key) return path;
  return `${path}${path.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(key)}`;
}

export interface EventHandlers {
  [event: string]: (data: unknown) => void;
}

/**
 * Subscribes to a job's server-sent events. `onUnavailable` fires when the stream cannot be opened at all
 * (no events endpoint, auth refused) so the caller can fall back to polling; after the first event,
 * EventSource's own reconnection handles dropped connections until `close()`.
 */
export function subscribe(path: string, handlers: EventHandlers, onUnavailable: () => void): () => void {
  if (typeof EventSource === 'undefined') {
    onUnavailable();
    return () => undefined;
  }
  const source = new EventSource(eventsUrl(path));
  let opened = false;
  let closed = false;
  const close = (): void => {
    closed = true;
    source.close();
  };
  source.onopen = () => {
    opened = true;
  };
  source.onerror = () => {
    // Never opened: the endpoint is missing or refused us, and EventSource would retry forever.
    if (!opened && !closed) {
      close();
      onUnavailable();
    }
  };
  for (const [name, handler] of Object.entries(handlers)) {
    source.addEventListener(name, (ev) => {
      opened = true;
      let data: unknown = null;
      try {
        data = JSON.parse((ev as MessageEvent<string>).data);
      } catch {
        data = (ev as MessageEvent<string>).data;
      }
      handler(data);
    });
  }
  return close;
}
