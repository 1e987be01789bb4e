// A task's media result as a card: progress bar while it runs, then the video (or audio) inline
// with a download link. Results need the bearer token, so they are fetched as blobs.

import { objectUrl } from "./api.js";
import { t } from "./i18n.js";
import { watchTask } from "./progress.js";
import { h, progressBar, setProgress } from "./ui.js";

export function taskMediaCard(taskId, { kind = "video", onDone } = {}) {
  const bar = progressBar(0);
  const label = h("span.small.muted", { text: t("task.queued") });
  const card = h("div.media-card", { dataset: { taskId, testid: "media-card" } }, bar, label);
  let shown = false;
  watchTask(taskId, async (state) => {
    setProgress(bar, state.status === "completed" ? 100 : state.percent, state.status);
    const pct = `${Math.round(state.status === "completed" ? 100 : state.percent)} %`;
    label.textContent = state.status === "failed" || state.status === "cancelled"
      ? `${t(`status.${state.status}`)}: ${state.error || state.message || ""}`
      : `${pct} ${state.stage ? "· " + state.stage : ""}`;
    if (state.status !== "completed" || shown) return;
    shown = true;
    try {
      const url = await objectUrl(`/tasks/${encodeURIComponent(taskId)}/result`);
      card.dataset.objectUrl = url; // released by whoever discards the card (releaseMedia)
      const player = kind === "audio"
        ? h("audio", { controls: true, src: url, preload: "metadata" })
        : h("video", { controls: true, playsInline: true, preload: "metadata", src: url });
      const ext = kind === "audio" ? "wav" : "mp4";
      card.append(player, h("div.row", {},
        h("a", { href: url, download: `avatarbot-${taskId}.${ext}`, text: t("task.download") })));
      onDone?.(player);
    } catch (err) {
      label.textContent = `${t("task.resultError")}: ${err.message}`;
    }
  });
  return card;
}

/** Free the blob URLs of the result cards under `root` (they hold whole videos in memory). */
export function releaseMedia(root) {
  for (const card of root.querySelectorAll("[data-object-url]")) URL.revokeObjectURL(card.dataset.objectUrl);
}
