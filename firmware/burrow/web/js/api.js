// The API client: fetch with the one error shape, CSRF, and the cookie session.
//
// Auth is the cookie session (POST /api/auth/login?cookie=true): the HttpOnly burrow_session
// cookie rides along by itself, and every state-changing request echoes the readable
// burrow_csrf cookie in X-CSRF-Token. No web storage is used. The refresh token is an HttpOnly
// cookie sent only to /api/auth/refresh: the session is renewed shortly before the access
// token runs out, on load when the readable burrow_refresh_hint cookie says there is a refresh
// cookie, and once when a call answers 401 (then the call is made again, once).
//
// Every failure is an ApiError with the API's fields (error, code, message, details[]) and a
// human sentence (.human) for the banner: no status codes, no raw "invalid credentials".

const REFRESH_EARLY_S = 60; // renew this long before the access token expires
const MAX_TEXT = 200; // characters of a non-JSON error body kept for the message

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    const b = body && typeof body === "object" ? body : {};
    super(typeof b.message === "string" && b.message ? b.message : `HTTP ${status}`);
    this.status = status;
    this.error = typeof b.error === "string" ? b.error : "";
    this.code = typeof b.code === "number" ? b.code : status;
    this.details = Array.isArray(b.details)
      ? b.details.filter((d) => d && typeof d === "object").map((d) => ({
        field: typeof d.field === "string" ? d.field : "", message: String(d.message || "")}))
      : [];
    this.retryAfter = retryAfter;
    this.human = humanMessage(this);
  }
}

export function cookie(name) {
  for (const part of document.cookie ? document.cookie.split("; ") : []) {
    if (part.startsWith(name + "=")) return decodeURIComponent(part.slice(name.length + 1));
  }
  return "";
}

function sentence(text) {
  const s = String(text || "").trim();
  if (!s) return "";
  const first = s.charAt(0).toUpperCase() + s.slice(1);
  return /[.!?…]$/.test(first) ? first : first + ".";
}

/** "3 minutes", "45 seconds": a wait in words. */
export function waitWords(seconds) {
  const s = Math.max(1, Math.ceil(Number(seconds) || 0));
  if (s < 90) return `${s} second${s === 1 ? "" : "s"}`;
  const m = Math.round(s / 60);
  return `${m} minute${m === 1 ? "" : "s"}`;
}

/** The sentence an owner reads for an error; `labels` maps API field names to the form's words. */
export function humanMessage(err, labels = {}) {
  const status = err.status;
  if (status === 0) return "Burrow did not answer. Is this phone on the same network? The page keeps trying.";
  if (err.error === "locked_out") {
    const wait = err.retryAfter || Number((/(\d+) s\b/.exec(err.message) || [])[1]) || 60;
    const at = new Date(Date.now() + wait * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
    return `Too many failed attempts. Try again in ${waitWords(wait)} (at ${at}).`;
  }
  if (err.error === "busy") return "Burrow is busy checking other sign-ins. Try again in a moment.";
  if (status === 400 && err.details.length) {
    const parts = err.details.map((d) => {
      const label = labels[d.field] || d.field;
      return label ? `${label}: ${d.message}` : d.message;
    });
    return `Please check ${err.details.length === 1 ? "this field" : "these fields"}: ${parts.join("; ")}.`;
  }
  if (status === 401) return "Your session has ended. Please sign in again.";
  if (status === 403) return sentence(err.message === "not allowed" || !err.message
    ? "Your account is not allowed to do this" : err.message);
  if (status === 429) return "Too many requests at once. Wait a moment and try again.";
  if (status === 421) return "This address does not reach Burrow's page directly. Open Burrow by its own address.";
  if (status >= 500 && status !== 503) return `Something went wrong inside Burrow: ${sentence(err.message)}`;
  if (status === 503) return `Burrow cannot do this right now: ${sentence(err.message)}`;
  return sentence(err.message);
}

// ---- the session ------------------------------------------------------------------------------

let refreshTimer = null;
let renewing = null; // one renewal at a time: concurrent 401s share it
let onSessionEnd = () => {};

/** What to do when the session has ended for good (the page shows the sign-in). */
export function onSignedOut(fn) {
  onSessionEnd = fn;
}

export function hasSession() {
  return !!cookie("burrow_csrf");
}

export function canRenew() {
  return !!cookie("burrow_refresh_hint");
}

function scheduleRenewal(expiresIn) {
  clearTimeout(refreshTimer);
  if (!(expiresIn > REFRESH_EARLY_S)) return;
  refreshTimer = setTimeout(() => {
    renew().catch(() => onSessionEnd("Your session has ended. Please sign in again."));
  }, (expiresIn - REFRESH_EARLY_S) * 1000);
}

/** A new access token (and refresh token) for the refresh cookie; the old one is spent. */
export function renew() {
  if (!renewing) {
    renewing = request("POST", "/api/auth/refresh?cookie=true", {}, {retry: false})
      .then((pair) => { scheduleRenewal(pair.expires_in); return pair; })
      .finally(() => { renewing = null; });
  }
  return renewing;
}

/** remember: "stay signed in on this device" (false: the session ends with the browser, or
 * after the server's short lifetime without use; true: the server's maximum). */
export async function signIn(username, password, totp, remember) {
  const body = {username, password};
  if (totp) body.totp = totp;
  if (remember !== undefined) body.remember = !!remember;
  const pair = await request("POST", "/api/auth/login?cookie=true", body, {retry: false});
  scheduleRenewal(pair.expires_in);
  return request("GET", "/api/auth/me");
}

export async function signOut() {
  clearTimeout(refreshTimer);
  try {
    await request("POST", "/api/auth/logout", undefined, {retry: false});
  } catch {
    // Signed out here either way; the cookies expire by themselves.
  }
}

export function stopRenewal() {
  clearTimeout(refreshTimer);
}

// ---- requests ---------------------------------------------------------------------------------

async function send(method, path, body) {
  const headers = {Accept: "application/json"};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") {
    const token = cookie("burrow_csrf");
    if (token) headers["X-CSRF-Token"] = token;
  }
  let res;
  try {
    res = await fetch(path, {method, headers, credentials: "same-origin", cache: "no-store",
                             body: body === undefined ? undefined : JSON.stringify(body)});
  } catch {
    throw new ApiError(0, {message: "no answer"});
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = {message: text.slice(0, MAX_TEXT)}; }
  }
  if (!res.ok) {
    const wait = Number(res.headers.get("Retry-After")) || undefined;
    throw new ApiError(res.status, data, wait);
  }
  return data;
}

/**
 * One API call; resolves to the parsed JSON answer or rejects with an ApiError. A 401 on a
 * call outside /api/auth/ renews the session once and repeats the call; when renewing fails,
 * the session has ended (onSignedOut's function runs) and the 401 is thrown.
 */
export async function request(method, path, body, {retry = true} = {}) {
  try {
    return await send(method, path, body);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401 || !retry || path.startsWith("/api/auth/")) throw err;
    try {
      if (!canRenew()) throw err; // no refresh cookie: nothing to renew with
      await renew();
    } catch {
      onSessionEnd("Your session has ended. Please sign in again.");
      throw err;
    }
    return send(method, path, body);
  }
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body);
export const del = (path) => request("DELETE", path);

/** End the session on this page now (after a password change signed every session out). */
export function endSession(message) {
  stopRenewal();
  onSessionEnd(message);
}

/**
 * POST raw bytes (a backup archive) with the CSRF header; resolves to the JSON answer or
 * rejects with an ApiError, like request(). No renewal retry: the body is not sent twice.
 */
export async function postBytes(path, bytes, contentType = "application/octet-stream") {
  const headers = {Accept: "application/json", "Content-Type": contentType};
  const token = cookie("burrow_csrf");
  if (token) headers["X-CSRF-Token"] = token;
  let res;
  try {
    res = await fetch(path, {method: "POST", headers, body: bytes, credentials: "same-origin", cache: "no-store"});
  } catch {
    throw new ApiError(0, {message: "no answer"});
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = {message: text.slice(0, MAX_TEXT)}; }
  }
  if (!res.ok) throw new ApiError(res.status, data, Number(res.headers.get("Retry-After")) || undefined);
  return data;
}
