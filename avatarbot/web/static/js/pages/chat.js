// Chat with an agent over WS /api/v1/ws/agent (channel "web": the same conversation path as
// Feishu/WeCom). Servers without the agents API still get "/video …" through
// POST /digital-human/generate.

import { api, ensureFreshToken, hasRoute, wsUrl } from "../api.js";
import { t } from "../i18n.js";
import { releaseMedia, taskMediaCard } from "../media.js";
import { feedProgress } from "../progress.js";
import { errorText, field, h, select } from "../ui.js";

const PREFS = "avatarbot.chat";

// The conversation survives visits to the admin pages (same tab): its DOM, videos included.
let kept = null; // {userId, messages, attached}

/** [{task_id, kind}] mentioned by an agent frame ("task" frames, answer media, results). */
function tasksIn(frame) {
  const found = new Map();
  const visit = (o) => {
    if (!o || typeof o !== "object") return;
    if (Array.isArray(o)) { o.forEach(visit); return; }
    if (typeof o.task_id === "string" && !found.has(o.task_id)) found.set(o.task_id, o.kind || "video");
    visit(o.result); visit(o.media); visit(o.attachments); visit(o.data);
  };
  visit(frame);
  return [...found].map(([id, kind]) => ({ id, kind }));
}

function frameText(frame) {
  return frame.text ?? frame.delta ?? frame.content ?? frame.token ?? "";
}

export async function render(view, { user } = {}) {
  const [hasAgents, hasHumans, hasGenerate] = await Promise.all([
    hasRoute("/agents/list"), hasRoute("/digital-human/list"), hasRoute("/digital-human/generate"),
  ]);
  const prefs = JSON.parse(localStorage.getItem(PREFS) || "{}");
  const agentSelect = select("agent", [["", t("chat.defaultAgent")]], "");
  const humanSelect = select("digital_human", [["", t("chat.defaultHuman")]], "");
  if (kept && kept.userId !== user?.id) kept = null; // another account signed in
  const fresh = kept === null;
  kept ??= { userId: user?.id, messages: h("div.messages", { dataset: { testid: "messages" } }), attached: new Set() };
  const { messages, attached } = kept;
  const input = h("textarea", { name: "message", rows: 1, placeholder: t("chat.placeholder"), dataset: { testid: "chat-input" } });
  const sendButton = h("button.btn", { type: "submit", text: t("chat.send"), dataset: { testid: "chat-send" } });
  const composer = h("form.composer", {}, input, sendButton);
  const clearButton = h("button.btn.small.secondary", { type: "button", text: t("chat.clear"), dataset: { testid: "chat-clear" } });

  view.append(h("div.chat", {},
    h("aside.panel.chat-side", {},
      h("h2", { text: t("chat.title") }),
      field("chat.agent", agentSelect, hasAgents ? null : t("chat.noAgents")),
      field("chat.human", humanSelect),
      h("p.small.muted", { text: t("chat.hint") }),
      h("div.row", {}, clearButton)),
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
  const attachTask = (bubble, taskId, onReady, kind = "video") => {
    if (attached.has(taskId)) return;
    attached.add(taskId);
    bubble.append(taskMediaCard(taskId, { kind: kind === "audio" || kind === "voice" ? "audio" : "video", onDone: (player) => {
      player.addEventListener("loadedmetadata", scroll);
      onReady?.();
      scroll();
    } }));
    scroll();
  };
  if (fresh) addMessage("system", t("chat.welcome"));
  else scroll();

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
  async function connect() {
    await ensureFreshToken();
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

  // Agent socket frames: ready, token*, tool_call, tool_result, task, answer, then progress
  // frames for the tasks the agent started (they are routed to the media cards).
  function onFrame(frame) {
    const type = frame.type;
    if (type === "progress" || type === "snapshot") {
      feedProgress(frame);
      return;
    }
    if (type === "error") {
      addMessage("system", frame.detail || frame.message || "error");
      current = null;
      return;
    }
    if (!["token", "tool_call", "tool_result", "task", "answer"].includes(type)) return;
    current ??= addMessage("bot", "");
    if (type === "token") {
      bubbleText(current).textContent += frameText(frame);
    } else if (type === "tool_call") {
      current.append(h("div.tool", { text: `⚙ ${frame.name || frame.tool || "tool"}` }));
    } else if (type === "answer") {
      // The answer's text is the whole reply; it replaces what the tokens streamed.
      const text = frameText(frame);
      if (text) bubbleText(current).textContent = text;
    }
    for (const task of tasksIn(frame)) attachTask(current, task.id, null, task.kind);
    if (type === "answer") {
      if (!bubbleText(current).textContent.trim() && !current.querySelector(".media-card")) current.remove();
      current = null;
    }
    scroll();
  }

  async function sendToAgent(text) {
    try {
      const ws = socket && socket.readyState === WebSocket.OPEN ? socket : await connect();
      current = null;
      const message = { type: "message", text };
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
  // A fresh start: the page forgets the messages and the agent its conversation memory.
  clearButton.addEventListener("click", () => {
    releaseMedia(messages);
    messages.replaceChildren();
    attached.clear();
    current = null;
    if (socket && socket.readyState === WebSocket.OPEN) {
      const frame = { type: "reset" };
      if (agentSelect.value) frame.agent = agentSelect.value;
      socket.send(JSON.stringify(frame));
    }
    addMessage("system", t("chat.welcome"));
  });
  input.focus();
  return () => socket?.close();
}
