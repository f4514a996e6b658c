// Who is logged in: the GET /api/auth/me answer, cached.
//
//   me().user.display_name, role(), isProfessional(), isFamily() …
//
// me() is synchronous: main.js loads it before any route renders.

import { api } from './api.js';
import { destroyOutbox } from './outbox.js';

export const SHELL_CACHE_PREFIX = 'tsunagu-shell';

let cached = null;

export function me() {
  return cached;
}

export function setMe(value) {
  cached = value;
}

/** Reads GET /api/auth/me again (quietly: the caller decides what a 401 means). */
export async function loadMe() {
  cached = await api('GET', '/api/auth/me', undefined, {quiet: true});
  return cached;
}

export function role() {
  return cached?.user?.role ?? null;
}

export function userId() {
  return cached?.user?.id ?? null;
}

const PROFESSIONALS = new Set([
  'physician',
  'dentist',
  'pharmacist',
  'nurse',
  'therapist',
  'dietitian',
  'dental_hygienist',
  'care_manager',
  'care_worker',
  'municipal_staff',
]);

export function isProfessionalRole(r) {
  return PROFESSIONALS.has(r);
}

export function isProfessional() {
  return PROFESSIONALS.has(role());
}

/** Family members and patients. */
export function isFamily() {
  const r = role();
  return r === 'family' || r === 'patient';
}

export function isOfficer() {
  return role() === 'security_officer';
}

export function isOrgAdmin() {
  return role() === 'organisation_admin';
}

export function isSystemAdmin() {
  return role() === 'system_admin';
}

export function isEmergencyService() {
  return role() === 'emergency_service';
}

/** The steps still to do (change_password, enrol_totp, accept_policy), in order. */
export function pending() {
  return cached?.pending ?? [];
}

/**
 * Deletes everything the app keeps in the browser but the app shell: the outbox database,
 * every other cache, sessionStorage.
 */
export async function clearLocalData() {
  try {
    sessionStorage.clear();
  } catch {
    // ignore
  }
  try {
    await destroyOutbox();
  } catch (err) {
    console.error(err);
  }
  if ('caches' in window) {
    try {
      const names = await caches.keys();
      await Promise.all(
        names.filter((n) => !n.startsWith(SHELL_CACHE_PREFIX)).map((n) => caches.delete(n)),
      );
    } catch (err) {
      console.error(err);
    }
  }
}

/** POST /api/web/logout (ends every session of the user), then clears the local data. */
export async function logout() {
  try {
    await api('POST', '/api/web/logout', undefined, {quiet: true});
  } catch (err) {
    // Offline or already logged out: the local data goes anyway.
    console.warn('logout', err);
  }
  cached = null;
  await clearLocalData();
}
