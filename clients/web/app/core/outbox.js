// The outbox: every post is saved in IndexedDB ('tsunagu-outbox') before it is sent, so that a
// post typed offline (photos included, as Blobs) survives a reload and is sent when the network
// comes back: on 'online', on the socket's reconnection and every 15 seconds.
//
//   await addPost({client_id, room_id, kind, visibility, text, files: [File]});
//   onOutboxChange((type, record, extra) => …)  // type: 'added' | 'sending' | 'sent' | 'retry' | 'failed' | 'removed'
//   await listPosts(roomId)   // this user's posts of the room still in the outbox
//   await discardPost(clientId)
//
// A record: {client_id, room_id, user_id, kind, visibility, text, files: [{blob, name, type}],
// attachment_ids: [id|null per file], state: 'pending' | 'failed', error, created_at}.
// A 4xx answer other than 408/429 (and the session's own 401/403) marks it failed with the
// server's message; anything else leaves it pending for the next try.

import { api, uploadAttachment } from './api.js';

const DB_NAME = 'tsunagu-outbox';
const STORE = 'posts';
const listeners = new Set();

let dbPromise = null;
let currentUser = null;
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

async function put(record) {
  await tx('readwrite', (store) => {
    store.put(record);
  });
}

async function get(clientId) {
  return tx('readonly', (store, done) => {
    const req = store.get(clientId);
    req.onsuccess = () => done(req.result);
  });
}

async function all() {
  return tx('readonly', (store, done) => {
    const req = store.getAll();
    req.onsuccess = () => done(req.result || []);
  });
}

async function remove(clientId) {
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

/** This user's posts of `roomId` still in the outbox, oldest first. */
export async function listPosts(roomId) {
  const records = await all();
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
  flush();
}

/** Stops the retries (lock, logout, session lost). */
export function stopOutbox() {
  started = false;
  clearInterval(timer);
  timer = null;
  window.removeEventListener('online', onOnline);
}

/** Deletes the outbox database (logout). */
export async function destroyOutbox() {
  stopOutbox();
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
