// Task progress: live events over WS /api/v1/ws/progress, with polling of GET /tasks/{id} as the
// safety net (the socket may be missing on older servers, or drop events while reconnecting).

import { api, ensureFreshToken, hasRoute, wsUrl } from "./api.js";

const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const POLL_MS = 1000;

const watchers = new Map(); // task_id -> Set<callback>
const latest = new Map(); // task_id -> last state seen
let socket = null;
let socketWanted = false;
let reconnectTimer = null;

function emit(taskId, state) {
  const prev = latest.get(taskId);
  // Never move backwards (a late poll answer must not undo a newer socket event).
  if (prev && TERMINAL.has(prev.status)) return;
  if (prev && !TERMINAL.has(state.status) && (state.percent ?? 0) < (prev.percent ?? 0)) return;
  latest.set(taskId, state);
  for (const cb of watchers.get(taskId) || []) cb(state);
  if (TERMINAL.has(state.status)) watchers.delete(taskId);
  if (!watchers.size) closeSocket();
}

function normalise(raw) {
  return {
    task_id: raw.task_id ?? raw.id,
    status: String(raw.status || "running").toLowerCase(),
    percent: Number(raw.percent ?? raw.progress ?? 0),
    stage: raw.stage || "",
    message: raw.message || "",
    error: raw.error ?? raw.error_message ?? null,
    result: raw.result ?? null,
  };
}

// WS /ws/progress comes with the jobs API (the scheduler's routes are its visible sign in
// /openapi.json, which lists no WebSocket routes). Protocol: subscribe to task ids, then
// "snapshot" (current state) and "progress" frames arrive for them.
async function openSocket() {
  if (socket || !socketWanted) return;
  if (!(await hasRoute("/scheduler/list"))) return; // no progress socket on this server: poll only
  await ensureFreshToken();
  if (socket || !socketWanted) return;
  const ws = new WebSocket(wsUrl("/ws/progress"));
  socket = ws;
  ws.onopen = () => subscribe([...watchers.keys()]);
  ws.onmessage = (ev) => {
    let data;
    try { data = JSON.parse(ev.data); } catch { return; }
    for (const e of Array.isArray(data) ? data : [data]) feedProgress(e);
  };
  ws.onclose = () => {
    if (socket === ws) socket = null;
    if (socketWanted && watchers.size) reconnectTimer = setTimeout(openSocket, 2000);
  };
  ws.onerror = () => { /* onclose follows; polling keeps the bars moving meanwhile */ };
}

function subscribe(taskIds) {
  if (socket && socket.readyState === WebSocket.OPEN && taskIds.length) {
    socket.send(JSON.stringify({ type: "subscribe", task_ids: taskIds }));
  }
}

/** Feed a progress/snapshot frame from any socket (the agent socket forwards them too). */
export function feedProgress(frame) {
  const id = frame && (frame.task_id ?? (frame.type === "snapshot" ? frame.id : undefined));
  if (!id || !watchers.has(id)) return;
  if (frame.type && !["progress", "snapshot"].includes(frame.type)) return;
  emit(id, normalise(frame));
}

function closeSocket() {
  socketWanted = false;
  clearTimeout(reconnectTimer);
  if (socket) socket.close();
  socket = null;
}

async function poll(taskId) {
  while (watchers.has(taskId)) {
    try {
      const task = await api(`/tasks/${encodeURIComponent(taskId)}`);
      emit(taskId, normalise(task));
    } catch (err) {
      if (err.status === 404) {
        emit(taskId, { task_id: taskId, status: "failed", percent: 0, error: err.message });
        return;
      }
    }
    // Slower when the socket carries the events: the poll is then only the safety net.
    const open = socket && socket.readyState === WebSocket.OPEN;
    await new Promise((r) => setTimeout(r, open ? 3 * POLL_MS : POLL_MS));
  }
}

/** Call `onUpdate({status, percent, stage, message, error, result})` until the task ends. */
export function watchTask(taskId, onUpdate) {
  const known = latest.get(taskId);
  if (known && TERMINAL.has(known.status)) {
    onUpdate(known);
    return () => {};
  }
  const first = !watchers.has(taskId);
  if (first) watchers.set(taskId, new Set());
  watchers.get(taskId).add(onUpdate);
  socketWanted = true;
  if (first) subscribe([taskId]);
  openSocket();
  if (first) poll(taskId);
  return () => watchers.get(taskId)?.delete(onUpdate);
}

export const isTerminal = (status) => TERMINAL.has(status);
