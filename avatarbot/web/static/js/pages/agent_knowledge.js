// An agent's knowledge base on the agents page: upload (.txt .md .pdf .docx), list, search, delete
// (/api/v1/agents/{name}/knowledge). Its words live here so the shared i18n table stays small.

import { api } from "../api.js";
import { getLang, t } from "../i18n.js";
import { busy, errorText, formatTime, h, table, toast } from "../ui.js";

const WORDS = {
  en: {
    button: "Knowledge", title: "Knowledge base: {name}", hint: "Upload .txt, .md, .pdf or .docx (up to {mb} MB each). The agent answers from them and cites the document.",
    upload: "Upload", file: "Document", kind: "Type", size: "Size", passages: "Passages", updated: "Updated",
    uploaded: "Indexed {file}", replaced: "Re-indexed {file}", search: "Search", query: "Try a question…",
    none: "No passage matched.", empty: "No documents yet.", close: "Close", total: "Documents: {count} · {size}",
  },
  zh: {
    button: "知识库", title: "知识库：{name}", hint: "上传 .txt、.md、.pdf 或 .docx（每个不超过 {mb} MB）。智能体会据此回答并注明出处。",
    upload: "上传", file: "文档", kind: "类型", size: "大小", passages: "段落数", updated: "更新时间",
    uploaded: "已索引 {file}", replaced: "已重新索引 {file}", search: "检索", query: "试着提个问题…",
    none: "没有匹配的段落。", empty: "还没有文档。", close: "关闭", total: "文档：{count} 个 · {size}",
  },
};

export function say(key, vars = {}) {
  const text = (WORDS[getLang()] || WORDS.en)[key] || WORDS.en[key];
  return text.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
}

const size = (bytes) => (bytes >= 1048576 ? `${(bytes / 1048576).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1024))} KB`);

/** Fill `panel` with the knowledge base of `agent` ({name}); `onClose` empties it. */
export async function showKnowledge(panel, agent, onClose) {
  const base = `/agents/${encodeURIComponent(agent.name)}/knowledge`;
  const list = h("div", { dataset: { testid: "knowledge-list" } });
  const summary = h("p.small.muted");
  const input = h("input", { type: "file", name: "file", accept: ".txt,.md,.markdown,.pdf,.docx", required: true });
  const uploadButton = h("button.btn", { type: "submit", text: say("upload") });
  const error = h("p.error-text");
  const hint = h("p.small.muted");
  const form = h("form.row", { dataset: { testid: "knowledge-upload" } }, input, uploadButton);
  const query = h("input", { type: "search", name: "q", placeholder: say("query") });
  const results = h("div", { dataset: { testid: "knowledge-results" } });
  const searchForm = h("form.row", {}, query, h("button.btn.secondary", { type: "submit", text: say("search") }));

  const load = async () => {
    try {
      const answer = await api(base);
      hint.textContent = say("hint", { mb: Math.round(answer.limits.max_document_bytes / 1048576) });
      summary.textContent = say("total", { count: answer.count, size: size(answer.size_bytes) });
      list.replaceChildren(table([
        // table() looks keys up in the shared i18n table, which hands back unknown text as is.
        { key: say("file"), cell: (d) => h("strong", { text: d.filename }) },
        { key: say("kind"), cell: (d) => d.kind },
        { key: say("size"), cell: (d) => size(d.size_bytes) },
        { key: say("passages"), cell: (d) => String(d.chunk_count) },
        { key: say("updated"), cell: (d) => formatTime(d.updated_at) },
        { actions: true, cell: (d) => h("button.btn.small.danger", { type: "button", text: t("common.delete"), title: d.filename, on: { click: (ev) => busy(ev.target, async () => {
          await api(`${base}/${encodeURIComponent(d.id)}`, { method: "DELETE" });
          await load();
        }) } }) },
      ], answer.data.map((d) => ({ ...d, name: d.filename }))));
      if (!answer.count) list.replaceChildren(h("p.empty", { text: say("empty") }));
    } catch (err) {
      list.replaceChildren(h("p.error-text", { text: errorText(err) }));
    }
  };

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const file = input.files[0];
    if (!file) return;
    const body = new FormData();
    body.append("file", file);
    uploadButton.disabled = true;
    try {
      const doc = await api(base, { form: body });
      toast(say(doc.replaced ? "replaced" : "uploaded", { file: doc.filename }));
      form.reset();
      await load();
    } catch (err) {
      error.textContent = errorText(err);
    } finally {
      uploadButton.disabled = false;
    }
  });

  searchForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!query.value.trim()) return;
    try {
      const answer = await api(`${base}/search?q=${encodeURIComponent(query.value.trim())}`);
      results.replaceChildren(...(answer.results.length
        ? answer.results.map((p) => h("blockquote.small", {}, h("strong", { text: `[${p.cite}] ` }), p.text))
        : [h("p.empty", { text: say("none") })]));
    } catch (err) {
      results.replaceChildren(h("p.error-text", { text: errorText(err) }));
    }
  });

  panel.replaceChildren(
    h("div.row", {}, h("h2", { text: say("title", { name: agent.name }) }),
      h("button.btn.small.secondary", { type: "button", text: say("close"), on: { click: onClose } })),
    hint, form, error, summary, list, searchForm, results);
  panel.hidden = false;
  await load();
}
