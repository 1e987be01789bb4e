// Chat with an agent over WS /api/v1/ws/agent (channel "web": the same conversation path as
// Feishu/WeCom). Servers without the agents API still get "/video …" through
// POST /digital-human/generate.

import { api, hasRoute, wsUrl } from "../api.js";
import { t } from "../i18n.js";
import { taskMediaCard } from "../media.js";
import { errorText, field, h, select } from "../ui.js";

const PREFS = "avatarbot.chat";

function taskIdsIn(frame) {
  const ids = new Set();
  const visit = (o) => {
    if (!o || typeof o !== "object") return;
    if (Array.isArray(o)) { o.forEach(visit); return; }
    if (typeof o.task_id === "string") ids.add(o.task_id);
    visit(o.result); visit(o.media); visit(o.attachments); visit(o.data);
  };
  visit(frame);
  return [...ids];
}

function frameText(frame) {
  return frame.text ?? frame.delta ?? frame.content ?? frame.token ?? "";
}

export async function render(view) {
  const [hasAgents, hasHumans, hasGenerate] = await Promise.all([
    hasRoute("/agents/list"), hasRoute("/digital-human/list"), hasRoute("/digital-human/generate"),
  ]);
  const prefs = JSON.parse(localStorage.getItem(PREFS) || "{}");
  const agentSelect = select("agent", [["", t("chat.defaultAgent")]], "");
  const humanSelect = select("digital_human", [["", t("chat.defaultHuman")]], "");
  const messages = h("div.messages", { dataset: { testid: "messages" } });
  const input = h("textarea", { name: "message", rows: 1, placeholder: t("chat.placeholder"), dataset: { testid: "chat-input" } });
  const sendButton = h("button.btn", { type: "submit", text: t("chat.send"), dataset: { testid: "chat-send" } });
  const composer = h("form.composer", {}, input, sendButton);

  view.append(h("div.chat", {},
    h("aside.panel.chat-side", {},
      h("h2", { text: t("chat.title") }),
      field("chat.agent", agentSelect, hasAgents ? null : t("chat.noAgents")),
      field("chat.human", humanSelect),
      h("p.small.muted", { text: t("chat.hint") })),
    h("section.panel.chat-main", {}, messages, composer)));

  const savePrefs = () => localStorage.setItem(PREFS, JSON.stringify({ agent: agentSelect.value, human: humanSelect.value }));
  agentSelect.addEventListener("change", savePrefs);
  humanSelect.addEventListener("change", savePrefs);

  if (hasAgents) {
    api("/agents/list").then((list) => {
      for (const a of list.items ?? list.data ?? list) agentSelect.append(h("option", { value: a.name, text: a.name }));
      agentSelect.value = [...agentSelect.options].some((o) => o.value === prefs.agent) ? prefs.agent : "";
    }).catch(() => {});
  }
  if (hasHumans) {
    api("/digital-human/list").then((list) => {
      for (const d of list.items ?? list.data ?? list) humanSelect.append(h("option", { value: d.id, text: d.name }));
      humanSelect.value = [...humanSelect.options].some((o) => o.value === prefs.human) ? prefs.human : "";
    }).catch(() => {});
  }

  const scroll = () => { messages.scrollTop = messages.scrollHeight; };
  const addMessage = (role, text) => {
    const el = h(`div.msg.${role}`, { dataset: { testid: `msg-${role}` } }, text ? h("span.text", { text }) : null);
    messages.append(el);
    scroll();
    return el;
  };
  const attached = new Set();
  const attachTask = (bubble, taskId, onReady) => {
    if (attached.has(taskId)) return;
    attached.add(taskId);
    bubble.append(taskMediaCard(taskId, { onDone: (player) => {
      player.addEventListener("loadedmetadata", scroll);
      onReady?.();
      scroll();
    } }));
    scroll();
  };
  addMessage("system", t("chat.welcome"));

  // --- fallback without agents: "/video …" straight to the pipeline
  async function generateVideo(text, bubble) {
    if (!hasGenerate) {
      bubble.querySelector(".text").textContent = t("chat.videoUnavailable");
      return;
    }
    const body = { text };
    if (humanSelect.value) body.digital_human_id = humanSelect.value;
    const answer = await api("/digital-human/generate", { json: body });
    const taskId = answer.task_id ?? answer.id ?? answer.task?.id;
    const label = bubble.querySelector(".text");
    label.textContent = t("chat.videoQueued");
    attachTask(bubble, taskId, () => { label.textContent = t("chat.videoReady"); });
  }

  async function fallback(text) {
    const bubble = addMessage("bot", "…");
    try {
      const video = text.match(/^\/video\s+([\s\S]+)/);
      if (video) await generateVideo(video[1].trim(), bubble);
      else if (text.trim() === "/help") bubble.querySelector(".text").textContent = t("chat.help");
      else bubble.querySelector(".text").textContent = t("chat.agentsUnavailable");
    } catch (err) {
      bubble.querySelector(".text").textContent = errorText(err);
      bubble.classList.add("error");
    }
  }

  // --- agents socket
  let socket = null;
  let current = null; // the bot bubble being streamed into
  function connect() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl("/ws/agent"));
      let opened = false;
      ws.onopen = () => { opened = true; socket = ws; resolve(ws); };
      ws.onerror = () => { if (!opened) reject(new Error(t("chat.socketFailed"))); };
      ws.onclose = () => { if (socket === ws) socket = null; current = null; };
      ws.onmessage = (ev) => {
        let frame;
        try { frame = JSON.parse(ev.data); } catch { return; }
        onFrame(frame);
      };
    });
  }

  function bubbleText(bubble) {
    let span = bubble.querySelector(".text");
    if (!span) { span = h("span.text"); bubble.prepend(span); }
    return span;
  }

  function onFrame(frame) {
    const type = frame.type || frame.event;
    if (type === "error") {
      addMessage("system", frame.detail || frame.message || frameText(frame) || "error");
      current = null;
      return;
    }
    if (type === "ready" || type === "pong" || type === "hello") return;
    current ??= addMessage("bot", "");
    if (type === "token") {
      bubbleText(current).textContent += frameText(frame);
    } else if (type === "tool_call" || type === "tool_result") {
      const name = frame.name || frame.tool || frame.tool_name || "tool";
      if (type === "tool_call") current.append(h("div"), h("span.tool", { text: `⚙ ${name}` }));
    } else if (type === "answer" || type === "done" || type === "final") {
      const text = frameText(frame);
      if (text && !bubbleText(current).textContent.trim()) bubbleText(current).textContent = text;
    }
    for (const id of taskIdsIn(frame)) attachTask(current, id);
    if (type === "answer" || type === "done" || type === "final") current = null;
    scroll();
  }

  async function sendToAgent(text) {
    try {
      const ws = socket && socket.readyState === WebSocket.OPEN ? socket : await connect();
      current = null;
      const message = { type: "message", text, channel: "web" };
      if (agentSelect.value) message.agent = agentSelect.value;
      if (humanSelect.value) message.digital_human_id = humanSelect.value;
      ws.send(JSON.stringify(message));
    } catch (err) {
      // No agent socket: "/video" still works through the pipeline API.
      if (/^\/video\s/.test(text) || text.trim() === "/help") return fallback(text);
      addMessage("system", errorText(err));
    }
  }

  composer.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    addMessage("user", text);
    if (hasAgents) await sendToAgent(text);
    else await fallback(text);
    input.focus();
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      composer.requestSubmit();
    }
  });
  input.focus();
  return () => socket?.close();
}
