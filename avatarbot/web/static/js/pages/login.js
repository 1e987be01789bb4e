// Sign in, or on a fresh install create the first (admin) account.

import { api, forgetUser, tokens } from "../api.js";
import { t } from "../i18n.js";
import { errorText, field, h } from "../ui.js";

async function login(username, password) {
  const form = new URLSearchParams({ username, password });
  tokens.save(await api("/auth/login", { form, anonymous: true }));
  forgetUser();
}

export async function render(view, { onSignedIn }) {
  let status = { has_users: true, open_registration: false };
  try {
    status = await api("/auth/status", { anonymous: true });
  } catch { /* older server without /auth/status: show the sign-in form */ }
  let mode = status.has_users ? "login" : "setup";

  const card = h("section.panel.auth-card");
  view.append(card);

  const draw = () => {
    const setup = mode !== "login";
    const error = h("p.error-text", { dataset: { testid: "auth-error" } });
    const email = h("input", { name: "email", type: setup ? "email" : "text", required: true, autocomplete: "username" });
    const username = h("input", { name: "username", type: "text", autocomplete: "nickname", pattern: "[A-Za-z0-9_.\\-]{2,64}" });
    const password = h("input", {
      name: "password", type: "password", required: true, minLength: setup ? 8 : 1,
      autocomplete: setup ? "new-password" : "current-password",
    });
    const submit = h("button.btn", { type: "submit", text: t(setup ? "auth.create" : "auth.signIn") });
    const form = h("form", { dataset: { testid: setup ? "setup-form" : "login-form" } },
      field(setup ? "auth.email" : "auth.login", email),
      setup ? field("auth.username", username) : null,
      field("auth.password", password),
      error,
      h("div.row", {}, submit),
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      error.textContent = "";
      submit.disabled = true;
      try {
        if (setup) {
          const body = { email: email.value.trim(), password: password.value };
          if (username.value.trim()) body.username = username.value.trim();
          await api("/auth/register", { json: body, anonymous: true });
        }
        await login(email.value.trim(), password.value);
        onSignedIn();
      } catch (err) {
        error.textContent = errorText(err);
      } finally {
        submit.disabled = false;
      }
    });
    const switcher = mode === "login" && status.open_registration
      ? h("button.link", { type: "button", text: t("auth.register"), on: { click: () => { mode = "register"; draw(); } } })
      : mode === "register"
        ? h("button.link", { type: "button", text: t("auth.haveAccount"), on: { click: () => { mode = "login"; draw(); } } })
        : null;
    card.replaceChildren(...[
      h("h1", { text: t(mode === "setup" ? "auth.setupTitle" : mode === "register" ? "auth.registerTitle" : "auth.title") }),
      mode === "setup" ? h("p.muted", { text: t("auth.setupHint") }) : null,
      form,
      switcher ? h("div.row", {}, switcher) : null,
    ].filter(Boolean));
    email.focus();
  };
  draw();
}
