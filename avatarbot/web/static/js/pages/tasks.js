// Tasks: status, progress and errors; retry failed ones, cancel running ones. Refreshes itself.

import { api } from "../api.js";
import { t } from "../i18n.js";
import { taskMediaCard } from "../media.js";
import { busy, formatTime, h, pill, progressBar, select, table } from "../ui.js";

const REFRESH_MS = 3000;

export async function render(view) {
  const filter = select("status", [["", t("tasks.all")], ...["pending", "running", "completed", "failed", "cancelled"].map((s) => [s, t(`status.${s}`)])], "");
  const listPanel = h("section.panel", { dataset: { testid: "tasks-list" } });
  const resultPanel = h("div");
  view.append(h("div.row", {}, h("h1", { text: t("nav.tasks") }), h("span.spacer"), filter), resultPanel, listPanel);
  let timer = null;
  let stopped = false;

  const load = async () => {
    clearTimeout(timer);
    try {
      const query = filter.value ? `?status=${filter.value}&limit=100` : "?limit=100";
      const tasks = await api(`/tasks${query}`);
      listPanel.replaceChildren(table([
        { key: "tasks.task", cell: (x) => [h("strong", { text: x.name || x.task_type }), h("div.small.muted.mono", { text: x.id })] },
        { key: "common.status", cell: (x) => pill(x.status) },
        { key: "tasks.progress", cell: (x) => [progressBar(x.progress, x.status), h("div.small.muted", { text: `${Math.round(x.progress)} % ${x.stage || ""}` })] },
        { key: "tasks.error", cell: (x) => (x.error_message ? h("span.small.error-text", { text: x.error_message }) : "") },
        { key: "tasks.created", cell: (x) => h("span.small", { text: formatTime(x.created_at) }) },
        { actions: true, cell: (x) => [
          x.status === "completed" && x.result_url ? h("button.btn.small.secondary", { type: "button", text: t("tasks.view"), on: { click: () => {
            resultPanel.replaceChildren(h("section.panel", {}, h("h2", { text: x.name || x.id }),
              taskMediaCard(x.id, { kind: (x.result_url || "").match(/wav|mp3|ogg/) || x.task_type.includes("voice") ? "audio" : "video" })));
          } } }) : null, " ",
          ["failed", "cancelled"].includes(x.status) ? h("button.btn.small.secondary", { type: "button", text: t("tasks.retry"), on: { click: (ev) => busy(ev.target, async () => {
            await api(`/tasks/${encodeURIComponent(x.id)}/retry`, { method: "POST" });
            await load();
          }) } }) : null,
          ["pending", "running"].includes(x.status) ? h("button.btn.small.danger", { type: "button", text: t("tasks.cancel"), on: { click: (ev) => busy(ev.target, async () => {
            await api(`/tasks/${encodeURIComponent(x.id)}/cancel`, { method: "POST" });
            await load();
          }) } }) : null,
        ] },
      ], tasks, "tasks.none"));
    } catch (err) {
      listPanel.replaceChildren(h("p.error-text", { text: err.message }));
    }
    if (!stopped) timer = setTimeout(load, REFRESH_MS);
  };
  filter.addEventListener("change", load);
  await load();
  return () => { stopped = true; clearTimeout(timer); };
}
