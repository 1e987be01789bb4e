// Small DOM helpers. Text always goes in via textContent, never innerHTML.

import { getLang, t } from "./i18n.js";

/** h("div.cls#id", {attrs, on: {click}}, ...children) */
export function h(spec, attrs = {}, ...children) {
  const [tagAndClasses, id] = spec.split("#");
  const [tag, ...classes] = tagAndClasses.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  if (id) el.id = id;
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "on") for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn);
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function toast(message, kind = "info") {
  const el = h(`div.toast.${kind}`, { text: message });
  document.getElementById("toasts").append(el);
  setTimeout(() => el.remove(), kind === "error" ? 6000 : 3000);
}

export function errorText(err) {
  if (err && err.unavailable) return t("common.unavailable");
  return (err && err.message) || String(err);
}

export function notAvailable(what) {
  return h("div.notice", { dataset: { testid: "not-available" } }, t("common.notAvailable", { what }));
}

export function field(labelKey, control, hint) {
  return h("label.field", {}, h("span", { text: t(labelKey) }), control, hint ? h("small.muted", { text: hint }) : null);
}

export function select(name, options, value) {
  const el = h("select", { name });
  for (const opt of options) {
    const [v, label] = Array.isArray(opt) ? opt : [opt, opt];
    el.append(h("option", { value: v, text: label, selected: String(v) === String(value) }));
  }
  return el;
}

export function pill(status) {
  const s = String(status || "").toLowerCase();
  return h(`span.pill.${s.replace(/[^a-z]/g, "") || "none"}`, { text: t(`status.${s}`, {}, s) });
}

export function progressBar(percent = 0, state = "") {
  const bar = h("div.bar");
  const el = h("div.progress", { role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" }, bar);
  setProgress(el, percent, state);
  return el;
}

export function setProgress(el, percent, state = "") {
  const p = Math.max(0, Math.min(100, Number(percent) || 0));
  el.querySelector(".bar").style.width = `${p}%`;
  el.setAttribute("aria-valuenow", String(Math.round(p)));
  el.dataset.percent = String(Math.round(p));
  el.classList.toggle("done", state === "completed");
  el.classList.toggle("failed", state === "failed" || state === "cancelled");
}

/** A list table; columns: [{key: i18n key, cell: (row) => Node|string}] */
export function table(columns, rows, emptyKey = "common.empty") {
  if (!rows.length) return h("p.empty", { text: t(emptyKey) });
  const head = h("thead", {}, h("tr", {}, columns.map((c) => h("th", { text: c.key ? t(c.key) : "" }))));
  const body = h("tbody", {}, rows.map((row) => h("tr", { dataset: { id: String(row.id ?? ""), name: String(row.name ?? "") } },
    columns.map((c) => h(c.actions ? "td.actions" : "td", c.key ? { dataset: { label: t(c.key) } } : {}, c.cell(row))))));
  return h("div.table-wrap", {}, h("table.list", {}, head, body));
}

export function formatTime(value) {
  if (!value) return "";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString(getLang() === "zh" ? "zh-CN" : "en");
}

/** Run an async action from a button: disable while running, toast failures. */
export async function busy(button, action) {
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (err) {
    toast(errorText(err), "error");
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/** Read form controls into an object (checkbox groups of the same name become arrays). */
export function formValues(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    if (el.type === "checkbox") {
      if (el.dataset.group) {
        out[el.name] ??= [];
        if (el.checked) out[el.name].push(el.value);
      } else out[el.name] = el.checked;
    } else if (el.type !== "file") out[el.name] = el.value;
  }
  return out;
}
