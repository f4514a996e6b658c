// Talking to the server: cookie sessions, the CSRF header, one shared refresh on token_expired.
//
//   const rooms = await api('GET', '/api/rooms');
//   await api('PUT', `/api/rooms/${id}/read`, {seq});
//
// Answers the parsed JSON, or null for 204. Failures throw ApiError {status, code, message_ja,
// message_en, fields, retry_after_seconds}; a network failure has status 0 and code 'network'.

import { tIn } from './i18n.js';

export class ApiError extends Error {
  constructor(status, body) {
    const b = body || {};
    super(b.message_ja || b.message_en || b.code || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = b.code || 'unknown';
    this.message_ja = b.message_ja || '';
    this.message_en = b.message_en || '';
    this.fields = Array.isArray(b.fields) ? b.fields : [];
    this.retry_after_seconds = b.retry_after_seconds ?? null;
  }

  /** The field errors for `path` (the server's field name, e.g. 'patient.name'). */
  fieldErrors(path) {
    return this.fields.filter((f) => f.field === path);
  }
}

function localError(status, code, key, vars) {
  return new ApiError(status, {
    code,
    message_ja: tIn('ja', key, vars),
    message_en: tIn('en', key, vars),
  });
}

// Hooks set by main.js.
const hooks = {
  authLost: null, // (err) => void: 401 session_expired / token_invalid, or a failed refresh
  pendingStep: null, // (err) => void: 403 password_change_required / totp_enrolment_required / policy_acceptance_required
  network: null, // (ok: boolean) => void
};

export function onAuthLost(fn) {
  hooks.authLost = fn;
}
export function onPendingStep(fn) {
  hooks.pendingStep = fn;
}
export function onNetwork(fn) {
  hooks.network = fn;
}

const PENDING_CODES = new Set([
  'password_change_required',
  'totp_enrolment_required',
  'policy_acceptance_required',
]);
const LOST_CODES = new Set(['session_expired', 'token_invalid']);

export function csrfToken() {
  for (const part of document.cookie.split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === '__Host-tsunagu_csrf' || name === 'tsunagu_csrf') {
      return decodeURIComponent(rest.join('='));
    }
  }
  return '';
}

let refreshing = null;

/** One refresh at a time: a second use of a refresh token would end the session. */
export function refreshSession() {
  if (!refreshing) {
    refreshing = (async () => {
      const res = await send('POST', '/api/web/refresh', undefined, {});
      if (!res.ok) throw await toError(res);
      return true;
    })().finally(() => {
      // Let requests that were waiting on this refresh use it, then allow a new one.
      setTimeout(() => {
        refreshing = null;
      }, 0);
    });
  }
  return refreshing;
}

async function send(method, path, body, opts) {
  const headers = {Accept: 'application/json'};
  let payload;
  if (opts.raw !== undefined) {
    payload = opts.raw;
    headers['Content-Type'] = opts.contentType || 'application/octet-stream';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['Content-Type'] = 'application/json';
  }
  if (method !== 'GET' && method !== 'HEAD') {
    headers['X-CSRF-Token'] = csrfToken();
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), opts.timeoutMs || 35000);
  try {
    const res = await fetch(path, {
      method,
      headers,
      body: payload,
      credentials: 'same-origin',
      cache: 'no-store',
      signal: controller.signal,
    });
    if (hooks.network) hooks.network(true);
    return res;
  } catch (err) {
    if (hooks.network) hooks.network(false);
    throw localError(0, 'network', 'error.network');
  } finally {
    clearTimeout(timer);
  }
}

async function toError(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!body || typeof body !== 'object' || !body.code) {
    return localError(res.status, `http_${res.status}`, 'error.unexpected', {status: res.status});
  }
  return new ApiError(res.status, body);
}

async function request(method, path, body, opts = {}) {
  let res = await send(method, path, body, opts);
  if (res.status === 401) {
    const err = await toError(res);
    if (err.code === 'token_expired' && !opts.noRefresh) {
      try {
        await refreshSession();
      } catch (refreshErr) {
        if (refreshErr instanceof ApiError && refreshErr.code !== 'network' && hooks.authLost && !opts.quiet) {
          hooks.authLost(refreshErr);
        }
        throw refreshErr;
      }
      res = await send(method, path, body, opts);
      if (res.ok) return res;
      const again = await toError(res);
      if (res.status === 401 && LOST_CODES.has(again.code) && hooks.authLost && !opts.quiet) {
        hooks.authLost(again);
      }
      throw again;
    }
    if (LOST_CODES.has(err.code) && hooks.authLost && !opts.quiet) hooks.authLost(err);
    throw err;
  }
  if (!res.ok) {
    const err = await toError(res);
    if (res.status === 403 && PENDING_CODES.has(err.code) && hooks.pendingStep && !opts.quiet) {
      hooks.pendingStep(err);
    }
    throw err;
  }
  return res;
}

/**
 * api(method, path, body?, options?) -> parsed JSON, or null for 204 (or an empty body).
 * options: {quiet: true} skips the session hooks (used at boot and by the login screens).
 */
export async function api(method, path, body, options = {}) {
  const res = await request(method, path, body, options);
  if (res.status === 204) return null;
  const textBody = await res.text();
  if (!textBody) return null;
  try {
    return JSON.parse(textBody);
  } catch {
    return textBody;
  }
}

/** Uploads a file to a room: POST /api/rooms/{room}/attachments?file_name=… -> Attachment. */
export async function uploadAttachment(roomId, file, fileName) {
  const name = fileName || file.name || defaultFileName(file.type);
  const path = `/api/rooms/${encodeURIComponent(roomId)}/attachments?file_name=${encodeURIComponent(name)}`;
  const res = await request('POST', path, undefined, {
    raw: file,
    contentType: file.type || 'application/octet-stream',
    timeoutMs: 5 * 60 * 1000,
  });
  return res.json();
}

/** Alias named in docs/web-client.md. */
export const upload = uploadAttachment;

function defaultFileName(type) {
  if (type === 'image/png') return 'photo.png';
  if (type === 'application/pdf') return 'document.pdf';
  return 'photo.jpg';
}
