// The WebSocket: one socket for the tab, tickets, subscriptions, reconnection.
//
//   const off = live.onEvent((roomId, event) => { ... });   // every timeline event that arrives
//   live.watch(roomId, since);   // subscribe: events with seq > since, in order, each once
//   live.unwatch(roomId);
//   live.onState((state) => { ... })  // 'connected' (also after every reconnection) | 'disconnected'
//   live.onFrame((frame) => { ... })  // every frame (subscribed, acknowledged, error, …)
//
// After a drop the socket comes back by itself (1 s, 2 s, 4 s … 30 s, at once on 'online') and
// subscribes every watched room again since the last seq it delivered: no gaps, no duplicates.

import { api } from './api.js';

const watched = new Map(); // roomId -> last seq delivered
const eventListeners = new Set();
const stateListeners = new Set();
const frameListeners = new Set();

let socket = null;
let state = 'disconnected';
let stopped = true;
let backoff = 1000;
let retryTimer = null;
let pingTimer = null;
let connecting = false;
let pingNonce = 0;
let sessionEndedHook = null;

function setState(next) {
  if (state === next) return;
  state = next;
  for (const fn of [...stateListeners]) {
    try {
      fn(next);
    } catch (err) {
      console.error(err);
    }
  }
}

function emitFrame(frame) {
  for (const fn of [...frameListeners]) {
    try {
      fn(frame);
    } catch (err) {
      console.error(err);
    }
  }
}

function sendFrame(frame) {
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify(frame));
    return true;
  }
  return false;
}

function subscribe(roomId) {
  sendFrame({type: 'subscribe', room: roomId, since: watched.get(roomId) ?? 0});
}

function scheduleReconnect() {
  if (stopped || retryTimer) return;
  const wait = backoff;
  backoff = Math.min(backoff * 2, 30000);
  retryTimer = setTimeout(() => {
    retryTimer = null;
    connect();
  }, wait);
}

async function connect() {
  if (stopped || connecting || socket) return;
  if (!navigator.onLine) return; // 'online' brings it back
  connecting = true;
  let ticket;
  try {
    const answer = await api('POST', '/api/ws/ticket');
    ticket = answer.ticket;
  } catch (err) {
    connecting = false;
    if (err && (err.status === 401 || (err.status === 403 && err.code !== 'forbidden'))) {
      // The session is gone or has a pending step: main.js takes over through the api hooks.
      return;
    }
    scheduleReconnect();
    return;
  }
  if (stopped) {
    connecting = false;
    return;
  }
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  let ws;
  try {
    ws = new WebSocket(`${scheme}://${location.host}/api/ws?ticket=${encodeURIComponent(ticket)}`);
  } catch (err) {
    connecting = false;
    scheduleReconnect();
    return;
  }
  socket = ws;
  connecting = false;
  ws.addEventListener('open', () => {
    if (socket !== ws) return;
    backoff = 1000;
    for (const roomId of watched.keys()) subscribe(roomId);
    clearInterval(pingTimer);
    pingTimer = setInterval(() => {
      pingNonce += 1;
      sendFrame({type: 'ping', nonce: pingNonce});
    }, 25000);
    setState('connected');
  });
  ws.addEventListener('message', (msg) => {
    if (socket !== ws || typeof msg.data !== 'string') return;
    let frame;
    try {
      frame = JSON.parse(msg.data);
    } catch {
      return;
    }
    handleFrame(frame);
  });
  ws.addEventListener('close', (ev) => {
    if (socket !== ws) return;
    socket = null;
    clearInterval(pingTimer);
    pingTimer = null;
    setState('disconnected');
    if (ev.code === 4001) {
      if (sessionEndedHook) sessionEndedHook();
      return;
    }
    scheduleReconnect();
  });
  ws.addEventListener('error', () => {
    // 'close' follows.
  });
}

function handleFrame(frame) {
  switch (frame.type) {
    case 'event': {
      const roomId = frame.room;
      if (!watched.has(roomId) || !frame.event) break;
      const last = watched.get(roomId);
      const seq = frame.event.seq;
      if (seq <= last) break; // already delivered
      if (seq > last + 1) {
        // A gap should never happen; go back to the database for the missing ones.
        subscribe(roomId);
        break;
      }
      watched.set(roomId, seq);
      for (const fn of [...eventListeners]) {
        try {
          fn(roomId, frame.event);
        } catch (err) {
          console.error(err);
        }
      }
      break;
    }
    case 'resume':
      if (watched.has(frame.room)) subscribe(frame.room);
      break;
    case 'error':
      if (frame.room && frame.code === 'forbidden' && !frame.client_id) {
        // Removed from the room: nothing more will come.
        watched.delete(frame.room);
      }
      break;
    case 'session_ended':
      stopInternal();
      if (sessionEndedHook) sessionEndedHook();
      break;
    default:
      break;
  }
  emitFrame(frame);
}

function stopInternal() {
  stopped = true;
  clearTimeout(retryTimer);
  retryTimer = null;
  clearInterval(pingTimer);
  pingTimer = null;
  const ws = socket;
  socket = null;
  if (ws) {
    try {
      ws.close(1000);
    } catch {
      // ignore
    }
  }
  setState('disconnected');
}

window.addEventListener('online', () => {
  if (stopped) return;
  backoff = 1000;
  clearTimeout(retryTimer);
  retryTimer = null;
  connect();
});

window.addEventListener('offline', () => {
  // The socket may linger half-open; close it so that 'online' reconnects cleanly.
  if (socket) {
    const ws = socket;
    socket = null;
    clearInterval(pingTimer);
    try {
      ws.close();
    } catch {
      // ignore
    }
    setState('disconnected');
  }
});

export const live = {
  onEvent(fn) {
    eventListeners.add(fn);
    return () => eventListeners.delete(fn);
  },
  onState(fn) {
    stateListeners.add(fn);
    return () => stateListeners.delete(fn);
  },
  onFrame(fn) {
    frameListeners.add(fn);
    return () => frameListeners.delete(fn);
  },
  /** Receive the room's events with seq > since (replaces an earlier watch of the room). */
  watch(roomId, since = 0) {
    watched.set(roomId, Number(since) || 0);
    if (socket && socket.readyState === WebSocket.OPEN) subscribe(roomId);
    else connect();
  },
  unwatch(roomId) {
    if (!watched.has(roomId)) return;
    watched.delete(roomId);
    sendFrame({type: 'unsubscribe', room: roomId});
  },
  /** The last seq delivered for a watched room (undefined when not watched). */
  lastSeq(roomId) {
    return watched.get(roomId);
  },
  state() {
    return state;
  },
  /** Allows connecting (after login or unlock). */
  start() {
    stopped = false;
    backoff = 1000;
    if (watched.size) connect();
  },
  /** Closes the socket and forgets every watch (logout, lock). */
  stop() {
    watched.clear();
    stopInternal();
  },
  /** Called when the server ends the session over the socket (main.js). */
  onSessionEnded(fn) {
    sessionEndedHook = fn;
  },
  /** Sends a raw frame ({type: 'ack', …}); false when the socket is not open. */
  send(frame) {
    return sendFrame(frame);
  },
};

export default live;
