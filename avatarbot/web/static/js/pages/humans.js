// Digital humans: upload a portrait (with a face preview), pick a voice, preview a short clip.

import { api, hasRoute, objectUrl } from "../api.js";
import { t } from "../i18n.js";
import { taskMediaCard } from "../media.js";
import { busy, errorText, field, h, notAvailable, select, table, toast } from "../ui.js";

const MODES = ["talking_head", "lipsync", "enhanced_talking_head", "enhanced_lipsync"];
const listOf = (answer) => answer.items ?? answer.data ?? answer;

/** The stored portrait (it needs the bearer token, so it comes as a blob). */
function thumbnail(human, pending) {
  const img = h("img.thumb", { alt: human.name, width: 48, height: 48 });
  if (human.portrait_url) {
    pending.push(objectUrl(human.portrait_url).then((url) => {
      img.src = url;
      return img.decode();
    }).catch(() => {}));
  }
  return img;
}

export async function render(view) {
  view.append(h("h1", { text: t("nav.humans") }));
  if (!(await hasRoute("/digital-human/list"))) {
    view.append(notAvailable(t("nav.humans")));
    return;
  }
  const voices = (await hasRoute("/voice/profiles")) ? await api("/voice/profiles").then(listOf).catch(() => []) : [];
  const listPanel = h("section.panel", { dataset: { testid: "humans-list" } });
  const formPanel = h("section.panel");
  const clipPanel = h("div");
  view.append(h("div.grid2.list-first", {}, formPanel, h("div", {}, listPanel, clipPanel)));

  const name = h("input", { name: "name", required: true, maxLength: 100 });
  const description = h("input", { name: "description" });
  const image = h("input", { name: "image", type: "file", accept: "image/png,image/jpeg,image/webp,video/mp4,video/quicktime,video/webm", required: true });
  const voice = select("voice_profile_id", [["", t("humans.defaultVoice")], ...voices.map((v) => [v.id, v.name])], "");
  const mode = select("default_mode", MODES, MODES[0]);
  const preview = h("div.preview.hidden");
  const previewImg = h("img", { alt: t("humans.portrait") });
  // A video avatar (a short clip of the person) previews as a muted looping video.
  const previewVideo = h("video.hidden", { muted: true, loop: true, autoplay: true, playsInline: true });
  preview.append(previewImg, previewVideo);
  image.addEventListener("change", () => {
    const file = image.files[0];
    preview.classList.toggle("hidden", !file);
    if (!file) return;
    const isVideo = file.type.startsWith("video/");
    previewImg.classList.toggle("hidden", isVideo);
    previewVideo.classList.toggle("hidden", !isVideo);
    (isVideo ? previewVideo : previewImg).src = URL.createObjectURL(file);
  });
  const error = h("p.error-text");
  const submit = h("button.btn", { type: "submit", text: t("common.create") });
  const form = h("form", {},
    h("h2", { text: t("humans.new") }),
    field("common.name", name), field("common.description", description),
    field("humans.portrait", image, t("humans.portraitHint")), preview,
    field("humans.voice", voice), field("humans.mode", mode), error, h("div.row", {}, submit));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const data = new FormData();
    data.append("name", name.value.trim());
    data.append("description", description.value.trim());
    data.append("image", image.files[0]);
    if (voice.value) data.append("voice_profile_id", voice.value);
    data.append("default_mode", mode.value);
    submit.disabled = true;
    try {
      await api("/digital-human/create", { form: data });
      // The server accepted the portrait only after finding exactly one face in it.
      toast(t("humans.faceOk"));
      form.reset();
      preview.classList.add("hidden");
      await load();
    } catch (err) {
      error.textContent = errorText(err);
    } finally {
      submit.disabled = false;
    }
  });
  formPanel.append(form);

  const previewClip = (human) => busy(null, async () => {
    const answer = await api("/digital-human/generate", {
      json: { text: t("humans.previewText", { name: human.name }), digital_human_id: human.id },
    });
    const taskId = answer.task_id ?? answer.id ?? answer.task?.id;
    clipPanel.replaceChildren(h("section.panel", {}, h("h2", { text: `${t("humans.preview")}: ${human.name}` }), taskMediaCard(taskId)));
  });

  const load = async () => {
    try {
      const humans = listOf(await api("/digital-human/list"));
      const pending = [];
      listPanel.replaceChildren(h("h2", { text: t("humans.list") }), table([
        { key: "humans.portrait", cell: (d) => thumbnail(d, pending) },
        { key: "common.name", cell: (d) => [h("strong", { text: d.name }), d.is_builtin ? h("span.small.muted", { text: ` (${t("humans.builtin")})` }) : null] },
        { key: "humans.voice", cell: (d) => voices.find((v) => v.id === d.voice_profile_id)?.name || t("humans.defaultVoice") },
        { key: "humans.mode", cell: (d) => [d.default_mode || "", d.source_type === "video" ? h("span.small.muted", { text: ` (${t("humans.video")})` }) : null] },
        { actions: true, cell: (d) => [
          h("button.btn.small.secondary", { type: "button", text: t("humans.preview"), on: { click: () => previewClip(d) } }), " ",
          d.is_builtin ? null : h("button.btn.small.danger", { type: "button", text: t("common.delete"), on: { click: (ev) => busy(ev.target, async () => {
            if (!confirm(t("common.confirmDelete", { name: d.name }))) return;
            await api(`/digital-human/${encodeURIComponent(d.id)}`, { method: "DELETE" });
            await load();
          }) } }),
        ] },
      ], humans));
      await Promise.all(pending);
    } catch (err) {
      listPanel.replaceChildren(h("p.error-text", { text: errorText(err) }));
    }
  };
  await load();
}
