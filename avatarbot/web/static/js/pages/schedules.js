// Scheduled reports: cron with a readable next-runs preview, target chat, run now.

import { api, hasRoute } from "../api.js";
import { describeCron, nextRuns } from "../cron.js";
import { getLang, t } from "../i18n.js";
import { busy, errorText, field, formatTime, h, notAvailable, pill, select, table, toast } from "../ui.js";

const listOf = (answer) => answer.items ?? answer.data ?? answer;
const localZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

function cronPreview(cron, zone, box) {
  try {
    const runs = nextRuns(cron, zone, 5);
    box.replaceChildren(
      h("strong", { text: describeCron(cron, getLang()) }),
      h("div.small", { text: `${t("schedules.nextRuns")} (${zone}):` }),
      h("ol", {}, runs.map((r) => h("li", { text: r }))));
    box.classList.remove("error-text");
    return true;
  } catch (err) {
    box.replaceChildren(h("span", { text: `${t("schedules.badCron")}: ${err.message}` }));
    box.classList.add("error-text");
    return false;
  }
}

export async function render(view) {
  view.append(h("h1", { text: t("nav.schedules") }));
  if (!(await hasRoute("/scheduler/list"))) {
    view.append(notAvailable(t("nav.schedules")));
    return;
  }
  const agents = (await hasRoute("/agents/list")) ? await api("/agents/list").then(listOf).catch(() => []) : [];
  const listPanel = h("section.panel", { dataset: { testid: "schedules-list" } });

  const name = h("input", { name: "name", required: true, maxLength: 200 });
  const cron = h("input", { name: "cron", required: true, value: "0 9 * * 1-5", spellcheck: false });
  const zone = h("input", { name: "timezone", required: true, value: localZone(), list: "time-zones" });
  const zones = h("datalist#time-zones", {}, (Intl.supportedValuesOf?.("timeZone") || ["UTC"]).map((z) => h("option", { value: z })));
  const help = h("div.cron-help", { dataset: { testid: "cron-preview" } });
  const agent = agents.length
    ? select("agent", agents.map((a) => [a.name, a.name]), agents.find((a) => a.is_default)?.name)
    : h("input", { name: "agent", required: true, value: "default" });
  const prompt = h("textarea", { name: "prompt", required: true, text: t("schedules.promptExample") });
  const output = select("output", [["text", t("schedules.text")], ["markdown", "Markdown"], ["video", t("schedules.video")]], "text");
  const platform = select("platform", [["feishu", t("channels.feishu")], ["wecom", t("channels.wecom")], ["webhook", t("schedules.webhook")]], "feishu");
  const chatId = h("input", { name: "chat_id", placeholder: "oc_… / wrk…" });
  const url = h("input", { name: "url", type: "url", placeholder: "https://…" });
  const chatField = field("schedules.chatId", chatId);
  const urlField = field("schedules.url", url);
  const enabled = h("input", { type: "checkbox", name: "enabled", checked: true });
  const syncTarget = () => {
    const hook = platform.value === "webhook";
    chatField.classList.toggle("hidden", hook);
    urlField.classList.toggle("hidden", !hook);
    chatId.required = !hook;
    url.required = hook;
  };
  platform.addEventListener("change", syncTarget);
  const refreshPreview = () => cronPreview(cron.value, zone.value.trim() || "UTC", help);
  cron.addEventListener("input", refreshPreview);
  zone.addEventListener("change", refreshPreview);
  const error = h("p.error-text");
  const submit = h("button.btn", { type: "submit", text: t("common.create") });
  // Two columns on wide screens: what and when on the left, where to on the right.
  const form = h("form.form-cols", { dataset: { testid: "schedule-form" } }, h("h2.span-all", { text: t("schedules.new") }),
    h("div", {}, field("common.name", name), field("schedules.cron", cron), help, field("schedules.timezone", zone), zones),
    h("div", {}, field("schedules.agent", agent), field("schedules.prompt", prompt), field("schedules.output", output),
      field("schedules.platform", platform), chatField, urlField,
      h("label.field", {}, h("span", { text: t("common.enabled") }), enabled)),
    h("div.span-all", {}, error, h("div.row", {}, submit)));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    if (!refreshPreview()) return;
    const target = { platform: platform.value };
    if (platform.value === "webhook") target.url = url.value.trim();
    else target.chat_id = chatId.value.trim();
    const body = {
      name: name.value.trim(), cron: cron.value.trim(), timezone: zone.value.trim(), agent: agent.value,
      prompt: prompt.value.trim(), output: output.value, target, enabled: enabled.checked,
    };
    submit.disabled = true;
    try {
      await api("/scheduler/create", { json: body });
      toast(t("common.saved"));
      name.value = "";
      await load();
    } catch (err) {
      error.textContent = errorText(err);
    } finally {
      submit.disabled = false;
    }
  });
  syncTarget();
  refreshPreview();
  // The list has more columns than the others: full width above the form.
  view.append(listPanel, h("section.panel", {}, form));

  const load = async () => {
    try {
      const schedules = listOf(await api("/scheduler/list"));
      listPanel.replaceChildren(h("h2", { text: t("schedules.list") }), table([
        { key: "common.name", cell: (s) => h("strong", { text: s.name }) },
        { key: "schedules.when", cell: (s) => [h("code", { text: s.cron }), h("div.small.muted", { text: `${safeDescribe(s.cron)} (${s.timezone || "UTC"})` }),
          s.next_runs?.length ? h("div.small.muted", { text: `${t("schedules.next")}: ${formatTime(s.next_runs[0])}` }) : null] },
        { key: "schedules.target", cell: (s) => `${s.target?.platform || ""} ${s.target?.chat_id || s.target?.url || ""}` },
        { key: "common.status", cell: (s) => pill(s.enabled ? "enabled" : "disabled") },
        { actions: true, cell: (s) => [
          h("button.btn.small.secondary", { type: "button", text: t("schedules.runNow"), on: { click: (ev) => busy(ev.target, async () => {
            const run = await api(`/scheduler/${encodeURIComponent(s.id)}/run`, { method: "POST" });
            toast(run?.error ? `${t("status.failed")}: ${run.error}` : `${t("schedules.started")}${run?.status ? ` (${t(`status.${run.status}`, {}, run.status)})` : ""}`, run?.error ? "error" : "info");
          }) } }), " ",
          h("button.btn.small.secondary", { type: "button", text: t(s.enabled ? "common.disable" : "common.enable"), on: { click: (ev) => busy(ev.target, async () => {
            await api(`/scheduler/${encodeURIComponent(s.id)}`, { method: "PUT", json: { enabled: !s.enabled } });
            await load();
          }) } }), " ",
          h("button.btn.small.danger", { type: "button", text: t("common.delete"), on: { click: (ev) => busy(ev.target, async () => {
            if (!confirm(t("common.confirmDelete", { name: s.name }))) return;
            await api(`/scheduler/${encodeURIComponent(s.id)}`, { method: "DELETE" });
            await load();
          }) } }),
        ] },
      ], schedules));
    } catch (err) {
      listPanel.replaceChildren(h("p.error-text", { text: errorText(err) }));
    }
  };
  await load();
}

function safeDescribe(expr) {
  try { return describeCron(expr, getLang()); } catch { return ""; }
}
