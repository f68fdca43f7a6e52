/**
 * Sign-in: an access token (the admin token, or a namespace's PaiAccessToken), tried against the
 * API before it is kept, in sessionStorage only. The field is a password field with autocomplete
 * off, so the browser neither shows nor remembers it.
 */
import { useState } from "preact/hooks";
import { ApiError, identify, type Auth } from "../api";
import { h } from "../ui";

export function SignIn(props: { onSignedIn: (auth: Auth) => void; notice?: string }) {
  const [token, setToken] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);

  async function submit(e: Event) {
    e.preventDefault();
    const value = token.trim();
    if (!value) return setError("Paste an access token.");
    setBusy(true);
    setError(undefined);
    try {
      props.onSignedIn(await identify(value));
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? "This token is not valid (or was revoked)." : `Cannot sign in: ${(err as Error).message}`);
    } finally {
      setBusy(false);
    }
  }

  return h(
    "main",
    { class: "signin" },
    h(
      "form",
      { class: "card", onSubmit: submit, id: "signin" },
      h("h1", null, h("span", { class: "logo" }, "pai"), " console"),
      props.notice ? h("p", { class: "notice" }, props.notice) : null,
      h("label", { for: "token" }, "Access token"),
      h("input", {
        id: "token",
        name: "token",
        type: "password",
        autocomplete: "off",
        spellcheck: false,
        value: token,
        onInput: (e: Event) => setToken((e.target as HTMLInputElement).value),
        autofocus: true,
      }),
      error ? h("p", { class: "error", role: "alert" }, error) : null,
      h("button", { type: "submit", class: "primary", disabled: busy }, busy ? "Signing in…" : "Sign in"),
      h(
        "p",
        { class: "hint" },
        "The admin token is in ",
        h("code", null, "<data-dir>/admin-token"),
        " on the server's machine; ",
        h("code", null, "pai create token -n NS"),
        " makes a token that sees one namespace. The token stays in this tab only.",
      ),
    ),
  );
}
