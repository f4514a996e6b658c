// The outbox: every post is saved in IndexedDB ('tsunagu-outbox') before it is sent, so that a
// post typed offline (photos included, as Blobs) survives a reload and is sent when the network
// comes back: on 'online', on the socket's reconnection and every 15 seconds.
//
//   await addPost({client_id, room_id, kind, visibility, text, files: [File]});
//   onOutboxChange((type, record, extra) => …)  // type: 'added' | 'sending' | 'sent' | 'retry' | 'failed' | 'removed'
//   await listPosts(roomId)   // this user's posts of the room still in the outbox
//   await discardPost(clientId)
//
// A record, as this module hands it out: {client_id, room_id, user_id, kind, visibility, text,
// files: [{blob, name, type}], attachment_ids: [id|null per file], state: 'pending' | 'failed',
// error, created_at}. A 4xx answer other than 408/429 (and the session's own 401/403) marks it
// failed with the server's message; anything else leaves it pending for the next try.
//
// Sealed at rest: what the post says (kind, visibility, text, file names and types) and each
// photo are stored AES-256-GCM encrypted under the user's outbox key (GET /api/web/outbox-key),
// which lives in this page's memory only (a non-extractable CryptoKey, dropped at lock and
// logout). IndexedDB holds only ids, states, times and ciphertext, so nothing clinical is
// readable from the browser's storage without logging in as the user. A page that starts
// offline has no key: posts typed then are kept in memory and sealed once the key arrives.

import { api, uploadAttachment } from './api.js';

const DB_NAME = 'tsunagu-outbox';
const STORE = 'posts';
const listeners = new Set();

let dbPromise = null;
let currentUser = null;
/** The user's outbox key (non-extractable), or null until fetched. */
let outboxKey = null;
let keyPromise = null;
/** Plaintext records of this page: client_id -> record; `volatile` ones are not stored yet. */
const memory = new Map();
let timer = null;
let running = null;
let again = false;
let started = false;

function openDb() {
  if (!('indexedDB' in window)) return Promise.reject(new Error('IndexedDB unavailable'));
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = () => {
        const db = req.result;
        if (!db.objectStoreNames.contains(STORE)) {
          const store = db.createObjectStore(STORE, {keyPath: 'client_id'});
          store.createIndex('room_id', 'room_id');
        }
      };
      req.onsuccess = () => {
        const db = req.result;
        db.onversionchange = () => {
          db.close();
          dbPromise = null;
        };
        resolve(db);
      };
      req.onerror = () => {
        dbPromise = null;
        reject(req.error);
      };
      req.onblocked = () => {
        // Another tab holds an older version; it closes on versionchange.
      };
    });
  }
  return dbPromise;
}

function tx(mode, fn) {
  return openDb().then(
    (db) =>
      new Promise((resolve, reject) => {
        const transaction = db.transaction(STORE, mode);
        const store = transaction.objectStore(STORE);
        let result;
        Promise.resolve(fn(store, (value) => {
          result = value;
        })).catch(reject);
        transaction.oncomplete = () => resolve(result);
        transaction.onerror = () => reject(transaction.error);
        transaction.onabort = () => reject(transaction.error);
      }),
  );
}

function notify(type, record, extra) {
  for (const fn of [...listeners]) {
    try {
      fn(type, record, extra);
    } catch (err) {
      console.error(err);
    }
  }
}

export function onOutboxChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

// ---------------------------------------------------------------------------- sealing

function b64urlToBytes(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** Fetches the user's outbox key once per unlock; null when offline or refused. */
async function ensureKey() {
  if (outboxKey) return outboxKey;
  if (!currentUser || !navigator.onLine) return null;
  if (!keyPromise) {
    const forUser = currentUser;
    keyPromise = (async () => {
      try {
        const answer = await api('GET', '/api/web/outbox-key');
        const raw = b64urlToBytes(answer.key);
        const key = await crypto.subtle.importKey('raw', raw, {name: 'AES-GCM'}, false, ['encrypt', 'decrypt']);
        raw.fill(0);
        if (currentUser === forUser) outboxKey = key;
        return outboxKey;
      } catch {
        return null;
      } finally {
        keyPromise = null;
      }
    })();
  }
  return keyPromise;
}

/** Binds a ciphertext to its post and user, so that records cannot be swapped. */
function context(record, part) {
  return new TextEncoder().encode(`tsunagu-outbox|${record.user_id}|${record.client_id}|${part}`);
}

async function encrypt(record, part, bytes) {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = await crypto.subtle.encrypt({name: 'AES-GCM', iv, additionalData: context(record, part)}, outboxKey, bytes);
  return {iv, data};
}

async function decrypt(record, part, sealed) {
  return crypto.subtle.decrypt({name: 'AES-GCM', iv: sealed.iv, additionalData: context(record, part)}, outboxKey, sealed.data);
}

/** The stored form of a plaintext record (needs the key). */
async function seal(record) {
  const about = {
    kind: record.kind,
    visibility: record.visibility,
    text: record.text,
    files: record.files.map((f) => ({name: f.name, type: f.type})),
  };
  const body = await encrypt(record, 'body', new TextEncoder().encode(JSON.stringify(about)));
  const blobs = [];
  for (let i = 0; i < record.files.length; i += 1) {
    blobs.push(await encrypt(record, `file${i}`, await record.files[i].blob.arrayBuffer()));
  }
  return {
    client_id: record.client_id,
    room_id: record.room_id,
    user_id: record.user_id,
    state: record.state,
    error: record.error,
    created_at: record.created_at,
    attachment_ids: record.attachment_ids,
    reuploaded: !!record.reuploaded,
    body,
    blobs,
  };
}

/** The plaintext record of a stored one, or null without the key (or if it does not open). */
async function unseal(stored) {
  if (!outboxKey || !stored.body) return null;
  try {
    const about = JSON.parse(new TextDecoder().decode(await decrypt(stored, 'body', stored.body)));
    const files = [];
    for (let i = 0; i < (stored.blobs || []).length; i += 1) {
      const meta = about.files[i] || {name: '', type: ''};
      const bytes = await decrypt(stored, `file${i}`, stored.blobs[i]);
      files.push({blob: new Blob([bytes], {type: meta.type}), name: meta.name, type: meta.type});
    }
    return {
      client_id: stored.client_id,
      room_id: stored.room_id,
      user_id: stored.user_id,
      kind: about.kind,
      visibility: about.visibility,
      text: about.text,
      files,
      attachment_ids: stored.attachment_ids,
      reuploaded: stored.reuploaded,
      state: stored.state,
      error: stored.error,
      created_at: stored.created_at,
    };
  } catch (err) {
    console.warn('outbox: a stored post did not open', stored.client_id, err && err.name);
    return null;
  }
}

// ---------------------------------------------------------------------------- storage

/** Keeps a plaintext record in memory and, with the key, sealed in IndexedDB. */
async function put(record) {
  memory.set(record.client_id, record);
  if (!(await ensureKey())) {
    record.volatile = true;
    return;
  }
  const sealed = await seal(record);
  await tx('readwrite', (store) => {
    store.put(sealed);
  });
  record.volatile = false;
}

async function storedRecord(clientId) {
  return tx('readonly', (store, done) => {
    const req = store.get(clientId);
    req.onsuccess = () => done(req.result);
  });
}

async function get(clientId) {
  if (memory.has(clientId)) return memory.get(clientId);
  const stored = await storedRecord(clientId);
  const record = stored ? await unseal(stored) : null;
  if (record) memory.set(clientId, record);
  return record;
}

/** Every record this page can read: stored ones opened with the key, and those in memory. */
async function all() {
  const stored = await tx('readonly', (store, done) => {
    const req = store.getAll();
    req.onsuccess = () => done(req.result || []);
  });
  await ensureKey();
  const records = new Map(memory);
  for (const item of stored) {
    if (records.has(item.client_id)) continue;
    const record = await unseal(item);
    if (record) {
      memory.set(record.client_id, record);
      records.set(record.client_id, record);
    }
  }
  return [...records.values()];
}

async function remove(clientId) {
  memory.delete(clientId);
  await tx('readwrite', (store) => {
    store.delete(clientId);
  });
}

/** Saves a post and starts sending it. files: File/Blob objects (photos), kept until sent. */
export async function addPost({client_id, room_id, kind, visibility, text, files = []}) {
  const record = {
    client_id,
    room_id,
    user_id: currentUser,
    kind,
    visibility,
    text,
    files: files.map((f) => ({blob: f, name: f.name || '', type: f.type || ''})),
    attachment_ids: files.map(() => null),
    state: 'pending',
    error: null,
    created_at: new Date().toISOString(),
  };
  await put(record);
  notify('added', record);
  flush();
  return record;
}

/** This user's posts of `roomId` still in the outbox, oldest first. Posts stored sealed that
 * this page cannot open yet (it started offline, without the key) come as placeholders with
 * `sealed: true` and no text: they are there, and are sent once the network is back. */
export async function listPosts(roomId) {
  const records = await all();
  const open = new Set(records.map((r) => r.client_id));
  const stored = await tx('readonly', (store, done) => {
    const req = store.getAll();
    req.onsuccess = () => done(req.result || []);
  });
  for (const item of stored) {
    if (open.has(item.client_id)) continue;
    records.push({
      client_id: item.client_id,
      room_id: item.room_id,
      user_id: item.user_id,
      kind: 'text',
      visibility: 'care_team',
      text: '',
      files: [],
      attachment_ids: item.attachment_ids || [],
      state: item.state,
      error: item.error,
      created_at: item.created_at,
      sealed: true,
    });
  }
  return records
    .filter((r) => r.room_id === roomId && r.user_id === currentUser)
    .sort((a, b) => a.created_at.localeCompare(b.created_at));
}

/** Removes a (failed) post from the outbox. */
export async function discardPost(clientId) {
  const record = await get(clientId);
  await remove(clientId);
  if (record) notify('removed', record);
}

/** Puts a failed post back in the queue. */
export async function retryPost(clientId) {
  const record = await get(clientId);
  if (!record) return;
  record.state = 'pending';
  record.error = null;
  await put(record);
  notify('retry', record);
  flush();
}

function isPermanent(err) {
  if (!err || typeof err.status !== 'number') return false;
  if (err.status === 0 || err.status >= 500) return false;
  if (err.status === 408 || err.status === 429) return false;
  if (err.status === 401) return false; // the session: after a new login it goes
  if (err.status === 403 && err.code !== 'forbidden') return false; // a pending step
  return err.status >= 400 && err.status < 500;
}

async function sendOne(record) {
  notify('sending', record);
  try {
    for (let i = 0; i < record.files.length; i += 1) {
      if (record.attachment_ids[i]) continue;
      const f = record.files[i];
      const answer = await uploadAttachment(record.room_id, f.blob, f.name || undefined);
      record.attachment_ids[i] = answer.attachment_id;
      await put(record);
    }
    const body = {
      client_id: record.client_id,
      kind: record.kind,
      visibility: record.visibility,
      text: record.text,
    };
    if (record.attachment_ids.length) body.attachments = record.attachment_ids;
    const posted = await api('POST', `/api/rooms/${encodeURIComponent(record.room_id)}/entries`, body);
    await remove(record.client_id);
    notify('sent', record, posted);
    return true;
  } catch (err) {
    const unavailable =
      err && err.status === 409 && (err.fields || []).some((f) => f.field === 'attachments' && f.code === 'unavailable');
    if (unavailable && !record.reuploaded) {
      // Uploaded too long ago (cleaned up after a day): upload the files again, once.
      record.attachment_ids = record.files.map(() => null);
      record.reuploaded = true;
      await put(record);
      return sendOne(record);
    }
    if (isPermanent(err)) {
      record.state = 'failed';
      record.error = {
        code: err.code,
        status: err.status,
        message_ja: err.message_ja,
        message_en: err.message_en,
        fields: err.fields || [],
      };
      await put(record);
      notify('failed', record, err);
    } else {
      notify('retry', record, err);
    }
    return false;
  }
}

/** Sends every pending post of the current user, one at a time, oldest first. */
export function flush() {
  if (!currentUser || !started) return Promise.resolve();
  if (running) {
    again = true;
    return running;
  }
  running = (async () => {
    do {
      again = false;
      if (!navigator.onLine) break;
      if (await ensureKey()) {
        for (const record of [...memory.values()].filter((r) => r.volatile)) {
          try {
            await put(record);
          } catch (err) {
            console.warn('outbox', err && err.name);
          }
        }
      }
      let records;
      try {
        records = await all();
      } catch (err) {
        console.error(err);
        break;
      }
      const mine = records
        .filter((r) => r.user_id === currentUser && r.state === 'pending')
        .sort((a, b) => a.created_at.localeCompare(b.created_at));
      for (const record of mine) {
        const ok = await sendOne(record);
        if (!ok && !navigator.onLine) break;
      }
    } while (again);
  })().finally(() => {
    running = null;
  });
  return running;
}

function onOnline() {
  flush();
}

/** Starts the retries for `userId` (after login or unlock). */
export function startOutbox(userId) {
  currentUser = userId;
  started = true;
  clearInterval(timer);
  timer = setInterval(flush, 15000);
  window.removeEventListener('online', onOnline);
  window.addEventListener('online', onOnline);
  ensureKey().finally(flush);
}

/** Stops the retries (lock, logout, session lost) and forgets the key and what it opened
 * (posts not yet sealed stay in memory, since they exist nowhere else). */
export function stopOutbox() {
  started = false;
  clearInterval(timer);
  timer = null;
  window.removeEventListener('online', onOnline);
  outboxKey = null;
  keyPromise = null;
  for (const [id, record] of memory) if (!record.volatile) memory.delete(id);
}

/** Deletes the outbox database (logout). */
export async function destroyOutbox() {
  stopOutbox();
  memory.clear();
  currentUser = null;
  if (!('indexedDB' in window)) return;
  if (dbPromise) {
    try {
      const db = await dbPromise;
      db.close();
    } catch {
      // ignore
    }
    dbPromise = null;
  }
  await new Promise((resolve) => {
    const req = indexedDB.deleteDatabase(DB_NAME);
    req.onsuccess = () => resolve();
    req.onerror = () => resolve();
    req.onblocked = () => resolve();
  });
}
