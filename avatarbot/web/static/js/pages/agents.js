// Agents: list, create, edit, delete (/api/v1/agents/*).

import { api, hasRoute } from "../api.js";
import { t } from "../i18n.js";
import { say as knowledgeWord, showKnowledge } from "./agent_knowledge.js";
import { busy, errorText, field, formValues, h, notAvailable, select, table, toast } from "../ui.js";

// The agents domain knows these; plugin-provided ones an agent already has are kept as extra boxes.
const CAPABILITIES = ["video", "voice", "plugins", "schedule", "knowledge", "mcp"];

const listOf = (answer) => answer.items ?? answer.data ?? answer;

export async function render(view) {
  view.append(h("h1", { text: t("nav.agents") }));
  if (!(await hasRoute("/agents/list"))) {
    view.append(notAvailable(t("nav.agents")));
    return;
  }
  const humans = (await hasRoute("/digital-human/list")) ? await api("/digital-human/list").then(listOf).catch(() => []) : [];
  const listPanel = h("section.panel", { dataset: { testid: "agents-list" } });
  const formPanel = h("section.panel");
  const knowledgePanel = h("section.panel", { hidden: true, dataset: { testid: "knowledge-panel" } });
  view.append(h("div.grid2.list-first", {}, formPanel, listPanel), knowledgePanel);
  const hasKnowledge = await hasRoute("/agents/{name}/knowledge");
  let editing = null;

  const drawForm = (agent = null) => {
    editing = agent;
    const name = h("input", { name: "name", required: true, value: agent?.name || "", readOnly: Boolean(agent), pattern: "[A-Za-z0-9_\\-]{1,64}" });
    const prompt = h("textarea", { name: "prompt", text: agent?.prompt || "" });
    const description = h("input", { name: "description", value: agent?.description || "" });
    const caps = new Set(agent?.capabilities ?? ["video", "voice"]);
    const names = [...new Set([...CAPABILITIES, ...caps])];
    const checks = h("div.checks", {}, names.map((c) => h("label", {},
      h("input", { type: "checkbox", name: "capabilities", value: c, checked: caps.has(c), dataset: { group: "1" } }), c)));
    const brain = select("brain", [["auto", "auto"], ["rules", "rules"], ["llm", "llm"]], agent?.brain || "auto");
    const human = select("digital_human_id", [["", t("chat.defaultHuman")], ...humans.map((d) => [d.id, d.name])], agent?.digital_human_id || "");
    // [{name, transport: "stdio"|"http"|"sse", command?, args?, env?, url?, headers?, tools?}]
    const mcp = h("textarea.mono", { name: "mcp_servers", rows: 4, dataset: { testid: "agent-mcp" },
      text: JSON.stringify(agent?.mcp_servers ?? [], null, 2) });
    const error = h("p.error-text");
    const submit = h("button.btn", { type: "submit", text: t(agent ? "common.save" : "common.create") });
    const form = h("form", { dataset: { testid: "agent-form" } },
      h("h2", { text: t(agent ? "agents.edit" : "agents.new") }),
      field("common.name", name), field("common.description", description), field("agents.prompt", prompt),
      h("div.field", {}, h("span.small.muted", { text: t("agents.capabilities") }), checks),
      field("agents.brain", brain), field("chat.human", human), field("agents.mcpServers", mcp), error,
      h("div.row", {}, submit, agent ? h("button.btn.secondary", { type: "button", text: t("common.cancel"), on: { click: () => drawForm() } }) : null));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      error.textContent = "";
      const body = formValues(form);
      body.digital_human_id ||= null;
      try {
        body.mcp_servers = JSON.parse(body.mcp_servers.trim() || "[]");
        if (!Array.isArray(body.mcp_servers)) throw new TypeError("not a list");
      } catch {
        error.textContent = t("agents.mcpBadJson");
        return;
      }
      submit.disabled = true;
      try {
        if (editing) await api(`/agents/${encodeURIComponent(editing.name)}`, { method: "PUT", json: body });
        else await api("/agents/create", { json: body });
        toast(t("common.saved"));
        drawForm();
        await load();
      } catch (err) {
        error.textContent = errorText(err);
      } finally {
        submit.disabled = false;
      }
    });
    formPanel.replaceChildren(form);
  };

  const load = async () => {
    try {
      const agents = listOf(await api("/agents/list"));
      listPanel.replaceChildren(h("h2", { text: t("agents.list") }), table([
        { key: "common.name", cell: (a) => [h("strong", { text: a.name }), a.is_default ? h("span.small.muted", { text: ` (${t("agents.default")})` }) : null,
          a.description ? h("div.small.muted", { text: a.description }) : null] },
        { key: "agents.capabilities", cell: (a) => (a.capabilities || []).join(", ") },
        { key: "agents.brain", cell: (a) => a.brain || "auto" },
        { actions: true, cell: (a) => [
          h("button.btn.small.secondary", { type: "button", text: t("common.edit"), on: { click: () => {
            drawForm(a);
            formPanel.scrollIntoView({ block: "start" }); // on phones the form sits below the list
          } } }), " ",
          hasKnowledge ? h("button.btn.small.secondary", { type: "button", text: knowledgeWord("button"), dataset: { testid: "knowledge-open" }, on: { click: () => {
            showKnowledge(knowledgePanel, a, () => { knowledgePanel.hidden = true; });
            knowledgePanel.scrollIntoView({ block: "start" });
          } } }) : null, hasKnowledge ? " " : null,
          h("button.btn.small.danger", { type: "button", text: t("common.delete"), on: { click: (ev) => busy(ev.target, async () => {
            if (!confirm(t("common.confirmDelete", { name: a.name }))) return;
            await api(`/agents/${encodeURIComponent(a.name)}`, { method: "DELETE" });
            await load();
          }) } }),
        ] },
      ], agents));
    } catch (err) {
      listPanel.replaceChildren(h("p.error-text", { text: errorText(err) }));
    }
  };
  drawForm();
  await load();
}
