// Channels: Feishu / WeCom status from /health and the webhook URLs to paste into each platform.

import { api } from "../api.js";
import { t } from "../i18n.js";
import { errorText, h, pill, toast } from "../ui.js";

function copyField(value, testid) {
  const code = h("code", { text: value, dataset: { testid } });
  const copy = h("button.btn.small.secondary", { type: "button", text: t("channels.copy"), on: { click: async () => {
    try {
      await navigator.clipboard.writeText(value);
      toast(t("channels.copied"));
    } catch {
      // Plain http on another host has no clipboard API: select the text for Ctrl+C instead.
      getSelection().selectAllChildren(code);
    }
  } } });
  return h("div.copy-field", {}, code, copy);
}

/** Mode, API base, last event, long-connection state: whatever the channel reports. */
function details(entry) {
  if (!entry || typeof entry !== "object") return null;
  const lc = entry.long_connection || {};
  const rows = [
    ["channels.mode", entry.mode],
    ["channels.baseUrl", entry.base_url],
    ["channels.lastEvent", entry.last_event_age_s !== undefined ? t("channels.secondsAgo", { s: Math.round(entry.last_event_age_s) }) : null],
    ["channels.connection", lc.state ? `${lc.state}${lc.restarts ? ` (${lc.restarts}↻)` : ""}` : null],
    ["channels.connectedSince", lc.connected_since],
    ["channels.lastFrame", lc.last_frame_age_s !== undefined ? t("channels.secondsAgo", { s: Math.round(lc.last_frame_age_s) }) : null],
    ["channels.lastError", lc.last_error],
  ].filter(([, v]) => v !== undefined && v !== null && v !== "");
  if (!rows.length) return null;
  return h("dl.details.small", {}, rows.map(([k, v]) => [h("dt", { text: t(k) }), h("dd", { text: String(v) })]));
}

function statusOf(entry) {
  if (!entry) return "disabled";
  if (typeof entry === "string") return entry.split(":")[0];
  return entry.status || "ok";
}

export async function render(view) {
  view.append(h("h1", { text: t("nav.channels") }));
  let health = null;
  try {
    health = await api("/health", { absolute: true });
  } catch (err) {
    view.append(h("p.error-text", { text: errorText(err) }));
  }
  const channels = health?.components?.channels || {};
  const platforms = [
    { key: "feishu", path: "/webhooks/feishu", steps: "channels.feishuSteps" },
    { key: "wecom", path: "/webhooks/wecom", steps: "channels.wecomSteps" },
    { key: "wecom_bot", path: "/webhooks/wecom-bot", steps: "channels.wecomBotSteps" },
  ];
  const cards = platforms.map((p) => {
    const entry = channels[p.key];
    const reason = typeof entry === "object" ? entry?.reason || entry?.detail || "" : "";
    const longConnection = typeof entry === "object" && entry?.mode === "long_connection";
    return h("section.panel", { dataset: { testid: `channel-${p.key}` } },
      h("div.row", {}, h("h2", { text: t(`channels.${p.key}`) }), h("span.spacer"), pill(statusOf(entry))),
      reason ? h("p.small.muted", { text: reason }) : null,
      details(entry),
      h("p.small", { text: t(longConnection ? "channels.longConnection" : "channels.webhookUrl") }),
      copyField(`${location.origin}${p.path}`, `webhook-${p.key}`),
      h("p.small.muted", { text: t(p.steps) }));
  });
  view.append(h("div.grid2", {}, cards));
  if (health) {
    const rows = Object.entries(health.components || {}).filter(([k]) => k !== "channels");
    view.append(h("section.panel", {}, h("h2", { text: t("channels.health") }),
      h("div.table-wrap", {}, h("table.list", {}, h("tbody", {}, rows.map(([name, entry]) => h("tr", {},
        h("td", { dataset: { label: t("common.name") } }, h("strong", { text: name })),
        h("td", { dataset: { label: t("common.status") } }, pill(statusOf(entry))),
        h("td.small.muted", { text: typeof entry === "object" ? entry.reason || entry.executor || entry.dialect || entry.model || "" : "" }))))))));
  }
}
