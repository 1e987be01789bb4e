// Plugins: list, enable/disable, reload, install (superusers).

import { api, availableRoutes, hasRoute } from "../api.js";
import { t } from "../i18n.js";
import { busy, errorText, field, h, notAvailable, pill, table, toast } from "../ui.js";

const listOf = (answer) => answer.items ?? answer.data ?? answer.plugins ?? answer;

/** The plugins router's enable/disable shape: "/plugins/{name}/enable" or a PUT on the plugin. */
async function toggleRoute() {
  const routes = (await availableRoutes()) || new Set();
  for (const r of routes) {
    const m = r.match(/^\/api\/v1\/plugins\/\{[a-z_]+\}\/(enable|disable)$/);
    if (m) return "action";
  }
  return [...routes].some((r) => /^\/api\/v1\/plugins\/\{[a-z_]+\}$/.test(r)) ? "put" : null;
}

export async function render(view, { user }) {
  view.append(h("h1", { text: t("nav.plugins") }));
  if (!(await hasRoute("/plugins/list"))) {
    view.append(notAvailable(t("nav.plugins")));
    return;
  }
  const toggle = await toggleRoute();
  const admin = Boolean(user?.is_superuser); // changing plugins is superuser-only on the server
  const listPanel = h("section.panel", { dataset: { testid: "plugins-list" } });
  const reload = h("button.btn.secondary", { type: "button", text: t("plugins.reloadAll"), on: { click: (ev) => busy(ev.target, async () => {
    await api("/plugins/reload", { json: {} });
    toast(t("plugins.reloaded"));
    await load();
  }) } });
  if (admin) view.append(h("div.row", { style: "margin-bottom:1rem" }, reload));
  view.append(listPanel);

  if (user?.is_superuser && (await hasRoute("/plugins/install"))) {
    const file = h("input", { type: "file", name: "file", accept: ".zip,.whl,.tar.gz,.tgz" });
    const name = h("input", { name: "name", placeholder: t("plugins.registryName") });
    const sha = h("input", { name: "sha256", placeholder: "sha256", pattern: "[0-9a-fA-F]{64}", spellcheck: false });
    file.addEventListener("change", async () => {
      // The server checks the archive against this digest; browsers offer SHA-256 only in
      // secure contexts (https or localhost), elsewhere it is pasted by hand.
      if (!file.files[0] || !crypto.subtle) return;
      const digest = await crypto.subtle.digest("SHA-256", await file.files[0].arrayBuffer());
      sha.value = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
    });
    const error = h("p.error-text");
    const submit = h("button.btn", { type: "submit", text: t("plugins.install") });
    const form = h("form.panel", {}, h("h2", { text: t("plugins.install") }),
      field("plugins.archive", file), field("plugins.sha256", sha, t("plugins.sha256Hint")),
      field("plugins.fromRegistry", name), error, h("div.row", {}, submit));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      error.textContent = "";
      submit.disabled = true;
      try {
        if (file.files[0]) {
          const data = new FormData();
          data.append("file", file.files[0]);
          data.append("sha256", sha.value.trim().toLowerCase());
          await api("/plugins/install", { form: data });
        } else if (name.value.trim()) {
          await api("/plugins/install", { json: { name: name.value.trim() } });
        } else {
          error.textContent = t("plugins.pickSomething");
          return;
        }
        toast(t("plugins.installed"));
        form.reset();
        await load();
      } catch (err) {
        error.textContent = errorText(err);
      } finally {
        submit.disabled = false;
      }
    });
    view.append(form);
  }

  const setEnabled = async (plugin, enabled) => {
    const path = `/plugins/${encodeURIComponent(plugin.name)}`;
    if (toggle === "action") await api(`${path}/${enabled ? "enable" : "disable"}`, { method: "POST" });
    else await api(path, { method: "PUT", json: { enabled } });
    await load();
  };

  const load = async () => {
    try {
      const plugins = listOf(await api("/plugins/list"));
      listPanel.replaceChildren(h("h2", { text: t("plugins.list") }), table([
        { key: "common.name", cell: (p) => [h("strong", { text: p.name }), h("div.small.muted", { text: p.description || "" })] },
        { key: "plugins.version", cell: (p) => [p.version || "", p.origin ? h("div.small.muted", { text: p.origin }) : null] },
        { key: "common.status", cell: (p) => [pill(p.error ? "error" : p.enabled === false ? "disabled" : p.loaded === false ? "pending" : "enabled"),
          p.error ? h("div.small.error-text", { text: p.error }) : null] },
        { key: "plugins.tools", cell: (p) => (p.tools || []).map((x) => (typeof x === "string" ? x : x.name).replace(`${p.name}.`, "")).join(", ") },
        { actions: true, cell: (p) => [
          toggle && admin ? h("button.btn.small.secondary", { type: "button", text: t(p.enabled === false ? "common.enable" : "common.disable"),
            on: { click: (ev) => busy(ev.target, () => setEnabled(p, p.enabled === false)) } }) : null, " ",
          !admin ? null : h("button.btn.small.secondary", { type: "button", text: t("plugins.reload"), on: { click: (ev) => busy(ev.target, async () => {
            await api("/plugins/reload", { json: { name: p.name } });
            toast(t("plugins.reloaded"));
            await load();
          }) } }),
        ] },
      ], plugins));
    } catch (err) {
      listPanel.replaceChildren(h("p.error-text", { text: errorText(err) }));
    }
  };
  await load();
}
