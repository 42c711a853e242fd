// The API key, where the service asks for one (AUTH=keys answers 401 without it). Kept in this browser's
// localStorage and sent as `Authorization: Bearer <key>` with every request (api.js); asked for with a small
// form the first time the service answers 401, and dropped with "Forget key".
const KEY = "genre-api-key";

export function storedKey() {
  try {
    return localStorage.getItem(KEY) || "";
  } catch {
    return "";  // storage refused (a private window): no key kept
  }
}

function keep(key) {
  try {
    if (key) localStorage.setItem(KEY, key);
    else localStorage.removeItem(KEY);
  } catch {
    // Storage refused: the key lasts until the page is left (below) and is asked for again after.
  }
  sessionKey = key;
  showForget();
}

let sessionKey = "";

// The headers that carry the key, if there is one.
export function authHeaders() {
  const key = storedKey() || sessionKey;
  return key ? { Authorization: `Bearer ${key}` } : {};
}

const el = (tag, props = {}, children = []) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};

let asking = null;  // the one form on screen: every request refused meanwhile waits for its answer

// Shows the key form; resolves true once a key is entered (the caller then tries again), false when the
// listener dismisses it (the caller reports the 401). `rejected`: a key was sent and refused.
export function askForKey(rejected) {
  if (asking) return asking;
  asking = new Promise((resolve) => {
    const input = el("input", { id: "api-key", type: "password", autocomplete: "off", required: true,
      spellcheck: false, placeholder: "gk_…" });
    input.setAttribute("aria-describedby", "api-key-hint");
    const form = el("form", { id: "key-form", className: "card key-form" }, [
      el("h2", { className: "card-title" }, [el("label", { htmlFor: "api-key", textContent: "This service needs an API key" })]),
      el("div", { className: "row" }, [input, el("button", { type: "submit", className: "primary", textContent: "Use key" }),
        el("button", { type: "button", id: "key-dismiss", textContent: "Not now" })]),
      el("p", { id: "api-key-hint", className: rejected ? "field-error" : "hint", textContent: rejected
        ? "That key wasn't accepted: it may be mistyped or revoked. Enter another one."
        : "Ask whoever runs this service for a key. It is kept in this browser only." }),
    ]);
    const done = (answer) => {
      form.remove();
      asking = null;
      resolve(answer);
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (!key) return;
      keep(key);
      done(true);
    });
    form.querySelector("#key-dismiss").addEventListener("click", () => done(false));
    const main = document.getElementById("main") || document.body;
    main.prepend(form);
    input.focus();
  });
  return asking;
}

// "Forget key" in the header while a key is kept.
function showForget() {
  const nav = document.querySelector("header.site nav");
  if (!nav) return;
  let button = document.getElementById("forget-key");
  if (!button) {
    button = el("button", { type: "button", id: "forget-key", className: "forget-key", textContent: "Forget key" });
    button.addEventListener("click", () => keep(""));
    nav.append(button);
  }
  button.hidden = !(storedKey() || sessionKey);
}

if (typeof document !== "undefined") {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", showForget);
  else showForget();
}

// Links to the API (a batch's CSV and JSON export) are downloads a plain link cannot send the key with:
// while a key is kept, they are fetched with it and saved from here.
async function download(link) {
  let response;
  for (;;) {
    response = await fetch(link.href, { headers: authHeaders() }).catch(() => null);
    if (!response || response.status !== 401 || !(await askForKey(true))) break;
  }
  if (!response || !response.ok) {
    window.location.href = link.href;  // let the service's own answer show
    return;
  }
  const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  const url = URL.createObjectURL(await response.blob());
  const save = el("a", { href: url, download: name ? name[1] : "" });
  document.body.append(save);
  save.click();
  save.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

if (typeof document !== "undefined") {
  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element && event.target.closest("a[href*='api/v1/']");
    if (!link || !authHeaders().Authorization || event.defaultPrevented) return;
    event.preventDefault();
    download(link);
  });
}
