// The page's client of the convstore API: tokens (kept in localStorage so that a reload stays
// signed in), a fetch wrapper that refreshes an expired access token once and retries, and a
// reader of the chat turn's Server-Sent Events.

const API = "/api/v1";
const STORAGE_KEY = "convstore.session";

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.code = this.problem.code || "";
  }
}

let session = load();
let refreshing = null;
const listeners = new Set();

function load() {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

function save(next) {
  session = next;
  if (next) localStorage.setItem(STORAGE_KEY, JSON.stringify(next));
  else localStorage.removeItem(STORAGE_KEY);
  for (const listener of listeners) listener(session);
}

// Another tab that refreshes or signs out changes the stored session: follow it.
window.addEventListener("storage", (event) => {
  if (event.key === STORAGE_KEY) {
    session = load();
    for (const listener of listeners) listener(session);
  }
});

export function onSession(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function signedIn() {
  return session !== null;
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

async function refresh() {
  // One refresh at a time: concurrent 401s wait for the same rotation.
  if (!refreshing) {
    const token = session && session.refresh_token;
    refreshing = (async () => {
      if (!token) throw new ApiError(401, { detail: "signed out" });
      const response = await fetch(`${API}/auth/refresh`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: token }),
      });
      if (!response.ok) {
        const problem = await problemOf(response);
        if (response.status === 401 || response.status === 422) save(null);
        throw new ApiError(response.status, problem);
      }
      save(await response.json());
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

// fetch() an API path with the access token; a 401 refreshes the token once and retries.
// Resolves to the Response (ok or not); callers read it with json() or stream it.
export async function send(path, { method = "GET", body, signal, auth = true } = {}) {
  const attempt = () => {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth && session) headers.Authorization = `Bearer ${session.access_token}`;
    return fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  };
  let response = await attempt();
  if (response.status === 401 && auth && session) {
    await refresh();
    response = await attempt();
  }
  if (response.status === 401 && auth) save(null);
  return response;
}

// send() and parse the answer: the JSON body, null for 204, an ApiError otherwise.
export async function call(path, options) {
  const response = await send(path, options);
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  return response.status === 204 ? null : response.json();
}

export async function register(email, password, name) {
  const body = { email, password };
  if (name) body.name = name;
  await call("/auth/register", { method: "POST", body, auth: false });
  return login(email, password);
}

export async function login(email, password) {
  const tokens = await call("/auth/login", {
    method: "POST",
    body: { email, password },
    auth: false,
  });
  save(tokens);
  return tokens;
}

export async function logout() {
  const current = session;
  if (current) {
    try {
      await fetch(`${API}/auth/logout`, {
        method: "POST",
        headers: {
          Authorization: `Bearer ${current.access_token}`,
          "Content-Type": "application/json",
        },
        body: JSON.stringify({ refresh_token: current.refresh_token }),
      });
    } catch {
      // Signed out here whatever the network says; the session expires on its own.
    }
  }
  save(null);
}

// POST a chat turn with "stream": true and call onFrame(frame) for each SSE frame as it arrives.
// Resolves when the stream ends; rejects with an ApiError when the turn is refused (4xx/5xx
// before the stream starts) and with an AbortError when `signal` aborts it.
export async function streamTurn(path, body, signal, onFrame) {
  const response = await send(path, { method: "POST", body: { ...body, stream: true }, signal });
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const frame = parseEvent(event);
      if (frame) onFrame(frame);
    }
  }
}

function parseEvent(text) {
  const data = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
  }
  if (!data.length) return null;
  try {
    const frame = JSON.parse(data.join("\n"));
    return frame && typeof frame === "object" && typeof frame.type === "string" ? frame : null;
  } catch {
    return null;
  }
}
