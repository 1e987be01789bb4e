// REST client: bearer tokens in localStorage, one transparent refresh on 401, typed errors.

const ACCESS = "avatarbot.access";
const REFRESH = "avatarbot.refresh";
export const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
  }
  // FastAPI answers an unknown route with exactly {"detail": "Not Found"}; domain 404s say more.
  get unavailable() {
    return (this.status === 404 && this.detail === "Not Found") || this.status === 405;
  }
}

export const tokens = {
  get access() { return localStorage.getItem(ACCESS); },
  get refresh() { return localStorage.getItem(REFRESH); },
  save(t) {
    localStorage.setItem(ACCESS, t.access_token);
    if (t.refresh_token) localStorage.setItem(REFRESH, t.refresh_token);
  },
  clear() {
    localStorage.removeItem(ACCESS);
    localStorage.removeItem(REFRESH);
  },
};

let onSignedOut = () => {};
export function setSignedOutHandler(fn) { onSignedOut = fn; }

let refreshing = null;
async function refreshTokens() {
  const refresh = tokens.refresh;
  if (!refresh) return false;
  // Several requests may hit 401 together; they share one refresh call.
  refreshing ??= fetch(`${API}/auth/refresh`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: refresh }),
  }).then(async (r) => {
    if (!r.ok) return false;
    tokens.save(await r.json());
    return true;
  }).catch(() => false).finally(() => { refreshing = null; });
  return refreshing;
}

function describe(body) {
  if (body && typeof body === "object" && "detail" in body) {
    const d = body.detail;
    if (Array.isArray(d)) return d.map((e) => `${(e.loc || []).slice(1).join(".")}: ${e.msg}`).join("; ");
    return d;
  }
  return body;
}

/** fetch under /api/v1. opts: method, json, form (FormData / URLSearchParams), raw (return Response). */
export async function api(path, opts = {}, retried = false) {
  const headers = {};
  let body;
  if (opts.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.json);
  } else if (opts.form !== undefined) {
    body = opts.form;
  }
  if (tokens.access && !opts.anonymous) headers.Authorization = `Bearer ${tokens.access}`;
  const response = await fetch(path.startsWith("/") && !path.startsWith(API) && !opts.absolute ? API + path : path, {
    method: opts.method || (body !== undefined ? "POST" : "GET"),
    headers,
    body,
  });
  if (response.status === 401 && !opts.anonymous && !retried) {
    if (await refreshTokens()) return api(path, opts, true);
    tokens.clear();
    onSignedOut();
  }
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = describe(await response.json()); } catch { /* not JSON */ }
    throw new ApiError(response.status, detail);
  }
  if (opts.raw) return response;
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

/** An authenticated binary download as an object URL (video/audio results need the bearer token). */
export async function objectUrl(path) {
  const response = await api(path, { raw: true });
  return URL.createObjectURL(await response.blob());
}

// Which routes this server has: the console shows "not available yet" for pages whose API
// is missing instead of calling it (a 404 would also show up as a browser console error).
let routesPromise = null;
export function availableRoutes() {
  routesPromise ??= fetch("/openapi.json")
    .then((r) => (r.ok ? r.json() : null))
    .then((spec) => (spec ? new Set(Object.keys(spec.paths || {})) : null))
    .catch(() => null);
  return routesPromise;
}

/** True when the server documents `route` (or when the spec is unreadable: then just try). */
export async function hasRoute(route) {
  const routes = await availableRoutes();
  return routes === null || routes.has(API + route);
}

/** Seconds until the access token expires (from its JWT payload), or -1 when unreadable. */
function accessTokenTtl() {
  try {
    const payload = JSON.parse(atob(tokens.access.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return payload.exp - Date.now() / 1000;
  } catch {
    return -1;
  }
}

/** WebSockets cannot refresh on a 401: renew a token that is about to expire before opening one. */
export async function ensureFreshToken() {
  if (tokens.access && accessTokenTtl() > 30) return;
  if (!(await refreshTokens())) {
    tokens.clear();
    onSignedOut();
  }
}

export function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const q = path.includes("?") ? "&" : "?";
  return `${scheme}//${location.host}${API}${path}${q}token=${encodeURIComponent(tokens.access || "")}`;
}

let mePromise = null;
export function forgetUser() { mePromise = null; }
export function currentUser() {
  mePromise ??= api("/auth/me").catch((e) => { mePromise = null; throw e; });
  return mePromise;
}
