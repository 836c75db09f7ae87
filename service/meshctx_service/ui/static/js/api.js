// Every request the viewer sends to the service: the form's vocabulary, validate, render, jobs, the OpenAPI document.
// Callers read the responses themselves: a 4xx is an answer the page shows, not an exception.

const TOKEN_KEY = "meshctx.token";

/** URL of a service route, relative to the page (the viewer lives one level below the service root, at /ui/). */
export const api = (path) => new URL(`../${path}`, document.baseURI).toString();

export function authHeader() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}

export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

/** Strategies, size fields and model fields from the library's tables (service/meshctx_service/ui/meta.py). */
export async function fetchMeta() {
  const response = await fetch(new URL("meta.json", document.baseURI));
  if (!response.ok) throw new Error(`meta.json answered HTTP ${response.status}`);
  return response.json();
}

export function postValidate(body, signal) {
  return fetch(api("v1/validate"), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
}

/** POST /v1/render/{target}; `path` is the route template found in the OpenAPI document. */
export function postRender(path, target, body) {
  const url = path.replace(/\{[^}]+\}/, encodeURIComponent(target));
  return fetch(api(url.slice(1)), {
    method: "POST",
    headers: { "content-type": "application/json", ...authHeader() },
    body: JSON.stringify(body),
  });
}

export function getJobs() {
  return fetch(api("v1/jobs"), { headers: authHeader() });
}

/** The service's OpenAPI document, or null when it cannot be read (the optional panels then stay hidden). */
export async function fetchOpenapi() {
  try {
    const response = await fetch(api("openapi.json"));
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}
