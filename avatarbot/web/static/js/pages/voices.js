// Voice profiles: upload reference audio, choose a backend voice, play a synthesized sample.

import { api, hasRoute, objectUrl } from "../api.js";
import { t } from "../i18n.js";
import { taskMediaCard } from "../media.js";
import { busy, errorText, field, h, notAvailable, pill, table, toast } from "../ui.js";

const listOf = (answer) => answer.items ?? answer.data ?? answer;

/** POST /voice/synthesize answers audio bytes, a task id, or a result URL: play whichever. */
async function sampleFor(profile, text) {
  const response = await api("/voice/synthesize", { json: { text, profile_id: profile.id, format: "wav" }, raw: true });
  const type = response.headers.get("content-type") || "";
  if (type.startsWith("audio/")) {
    return h("audio", { controls: true, autoplay: true, src: URL.createObjectURL(await response.blob()) });
  }
  const answer = await response.json();
  const taskId = answer.task_id ?? answer.id;
  if (taskId) return taskMediaCard(taskId, { kind: "audio" });
  const url = answer.url ?? answer.result_url;
  return h("audio", { controls: true, src: await objectUrl(url) });
}

export async function render(view) {
  view.append(h("h1", { text: t("nav.voices") }));
  if (!(await hasRoute("/voice/profiles"))) {
    view.append(notAvailable(t("nav.voices")));
    return;
  }
  const listPanel = h("section.panel", { dataset: { testid: "voices-list" } });
  const samplePanel = h("div");
  const name = h("input", { name: "name", required: true, maxLength: 100 });
  const backends = (await hasRoute("/voice/backends")) ? await api("/voice/backends").catch(() => []) : [];
  const backend = backends.length
    ? h("select", { name: "backend" }, backends.map((b) => h("option", {
      value: b.name, text: b.available ? b.name : `${b.name} (${b.reason || t("status.disabled")})`,
      disabled: !b.available, selected: b.name === "espeak",
    })))
    : h("input", { name: "backend", value: "espeak" });
  const voiceList = h("datalist#voice-ids");
  const voice = h("input", { name: "voice", placeholder: "cmn, en-us, …", list: "voice-ids" });
  const language = h("input", { name: "language", placeholder: "zh, en, …" });
  const loadVoices = async () => {
    if (!(await hasRoute("/voice/voices"))) return;
    const voices = await api(`/voice/voices?backend=${encodeURIComponent(backend.value)}`).catch(() => []);
    voiceList.replaceChildren(...voices.slice(0, 300).map((v) => h("option", { value: v.id, text: `${v.name} · ${v.language}` })));
  };
  backend.addEventListener("change", loadVoices);
  loadVoices();
  const reference = h("input", { name: "reference", type: "file", accept: "audio/*" });
  const referencePlayer = h("audio.hidden", { controls: true });
  reference.addEventListener("change", () => {
    const file = reference.files[0];
    referencePlayer.classList.toggle("hidden", !file);
    if (file) referencePlayer.src = URL.createObjectURL(file);
  });
  const error = h("p.error-text");
  const submit = h("button.btn", { type: "submit", text: t("common.create") });
  const form = h("form", {}, h("h2", { text: t("voices.new") }),
    field("common.name", name), field("voices.backend", backend), field("voices.voice", voice),
    voiceList, field("voices.language", language), field("voices.reference", reference, t("voices.referenceHint")),
    referencePlayer, error, h("div.row", {}, submit));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const data = new FormData();
    for (const el of [name, backend, voice, language]) if (el.value.trim()) data.append(el.name, el.value.trim());
    if (reference.files[0]) data.append("reference", reference.files[0]);
    submit.disabled = true;
    try {
      await api("/voice/profiles", { form: data });
      toast(t("common.saved"));
      form.reset();
      referencePlayer.classList.add("hidden");
      await load();
    } catch (err) {
      error.textContent = errorText(err);
    } finally {
      submit.disabled = false;
    }
  });
  view.append(h("div.grid2.list-first", {}, h("section.panel", {}, form), h("div", {}, listPanel, samplePanel)));

  const load = async () => {
    try {
      const profiles = listOf(await api("/voice/profiles"));
      listPanel.replaceChildren(h("h2", { text: t("voices.list") }), table([
        { key: "common.name", cell: (p) => h("strong", { text: p.name }) },
        { key: "voices.backend", cell: (p) => [p.backend, p.voice ? ` · ${p.voice}` : ""] },
        { key: "voices.reference", cell: (p) => (p.has_reference ? pill("ok") : h("span.muted", { text: "—" })) },
        { actions: true, cell: (p) => [
          h("button.btn.small.secondary", { type: "button", text: t("voices.sample"), on: { click: (ev) => busy(ev.target, async () => {
            samplePanel.replaceChildren(h("section.panel", {}, h("h2", { text: `${t("voices.sample")}: ${p.name}` }),
              await sampleFor(p, t("voices.sampleText"))));
          }) } }), " ",
          h("button.btn.small.danger", { type: "button", text: t("common.delete"), on: { click: (ev) => busy(ev.target, async () => {
            if (!confirm(t("common.confirmDelete", { name: p.name }))) return;
            await api(`/voice/profiles/${encodeURIComponent(p.id)}`, { method: "DELETE" });
            await load();
          }) } }),
        ] },
      ], profiles));
    } catch (err) {
      listPanel.replaceChildren(h("p.error-text", { text: errorText(err) }));
    }
  };
  await load();
}
