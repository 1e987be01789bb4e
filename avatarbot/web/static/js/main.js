// Console shell: hash routing, navigation, language switch, sign-in gate.

import { currentUser, forgetUser, setSignedOutHandler, tokens } from "./api.js";
import { applyI18n, getLang, onLangChange, setLang, t } from "./i18n.js";
import { h } from "./ui.js";

const ROUTES = {
  chat: () => import("./pages/chat.js"),
  agents: () => import("./pages/agents.js"),
  humans: () => import("./pages/humans.js"),
  voices: () => import("./pages/voices.js"),
  schedules: () => import("./pages/schedules.js"),
  plugins: () => import("./pages/plugins.js"),
  tasks: () => import("./pages/tasks.js"),
  channels: () => import("./pages/channels.js"),
};
const NAV = Object.keys(ROUTES);

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const menuToggle = document.getElementById("menu-toggle");
const logout = document.getElementById("logout");
let cleanup = null;
let renderSeq = 0;

function currentRoute() {
  const name = location.hash.replace(/^#\/?/, "").split("?")[0];
  return name || "chat";
}

function renderNav(active) {
  nav.replaceChildren(...NAV.map((name) => h("a", {
    href: `#/${name}`, text: t(`nav.${name}`), class: name === active ? "active" : "",
    dataset: { route: name },
  })));
}

/** Draw the current route. A newer render (fast clicks, hash changes) wins over an older one. */
async function render() {
  const seq = ++renderSeq;
  const route = currentRoute();
  cleanup?.();
  cleanup = null;
  nav.hidden = true;
  menuToggle.setAttribute("aria-expanded", "false");
  const signedIn = route !== "login" && Boolean(tokens.access);
  const name = ROUTES[route] ? route : "chat";
  const page = await (signedIn ? ROUTES[name]() : import("./pages/login.js"));
  const user = signedIn ? await currentUser().catch(() => null) : null;
  if (seq !== renderSeq) return;
  // Each render draws into its own root: a slower, older render writes into a detached node.
  const root = h("div.page", { dataset: { page: signedIn ? name : "login" } });
  view.replaceChildren(root);
  logout.hidden = !signedIn;
  menuToggle.hidden = !signedIn;
  if (!signedIn) {
    nav.replaceChildren();
    document.title = "avatarbot";
    await page.render(root, { onSignedIn });
    root.dataset.ready = "1";
    return;
  }
  renderNav(name);
  document.title = `${t(`nav.${name}`)} · avatarbot`;
  const stop = (await page.render(root, { user })) || null;
  root.dataset.ready = "1"; // the page's first data is drawn (tests and screen readers wait on it)
  if (seq === renderSeq) cleanup = stop;
  else stop?.();
}

function onSignedIn() {
  if (location.hash === "#/chat") render();
  else location.hash = "#/chat";
}

setSignedOutHandler(() => {
  if (currentRoute() !== "login") location.hash = "#/login";
});
logout.addEventListener("click", () => {
  tokens.clear();
  forgetUser();
  location.hash = "#/login";
});
menuToggle.addEventListener("click", () => {
  nav.hidden = !nav.hidden;
  menuToggle.setAttribute("aria-expanded", String(!nav.hidden));
});
document.getElementById("lang-toggle").addEventListener("click", () => setLang(getLang() === "zh" ? "en" : "zh"));
onLangChange(() => { applyI18n(document); render(); });
window.addEventListener("hashchange", render);
applyI18n(document);
render();
