/**
 * The console's shell: sign-in when there is no token (or it stopped working), otherwise the top
 * bar and the page the address names. The token is read from sessionStorage at start and checked
 * against the API again (which token it is decides what the pages offer).
 */
import { useEffect, useState } from "preact/hooks";
import { forgetToken, identify, storedToken, storeToken, whenUnauthorized, type Auth } from "./api";
import { parseRoute, onNavigate, BASE, sessionsHref } from "./routes";
import { h, Link } from "./ui";
import { SignIn } from "./pages/signin";
import { OverviewPage } from "./pages/overview";
import { AgentsPage } from "./pages/agents";
import { AgentPage } from "./pages/agent";
import { SessionsPage } from "./pages/sessions";
import { SessionPage } from "./pages/session";

const current = () => parseRoute(location.pathname, location.search);

export function App() {
  const [auth, setAuth] = useState<Auth | undefined>(undefined);
  const [checking, setChecking] = useState(() => storedToken() !== null);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const [route, setRoute] = useState(current);

  useEffect(() => {
    const update = () => setRoute(current());
    window.addEventListener("popstate", update);
    const off = onNavigate(update);
    whenUnauthorized((message) => {
      forgetToken();
      setAuth(undefined);
      setNotice(`Signed out: ${message}`);
    });
    const token = storedToken();
    if (token)
      identify(token)
        .then(setAuth, () => {
          forgetToken();
          setNotice("The saved token no longer works: sign in again.");
        })
        .finally(() => setChecking(false));
    return () => {
      window.removeEventListener("popstate", update);
      off();
    };
  }, []);

  if (checking) return h("p", { class: "muted center" }, "Signing in…");
  if (!auth)
    return h(SignIn, {
      notice,
      onSignedIn: (a: Auth) => {
        storeToken(a.token);
        setNotice(undefined);
        setAuth(a);
      },
    });

  const signOut = () => {
    forgetToken();
    setAuth(undefined);
    setNotice("Signed out.");
  };
  const nav = (href: string, label: string, active: boolean) => h(Link, { href, class: active ? "active" : "" }, label);
  let page;
  switch (route.page) {
    case "overview":
      page = h(OverviewPage, { auth });
      break;
    case "agents":
      page = h(AgentsPage, { auth });
      break;
    case "agent":
      page = h(AgentPage, { auth, namespace: route.namespace, name: route.name });
      break;
    case "sessions":
      page = h(SessionsPage, { auth, query: route.query });
      break;
    case "session":
      page = h(SessionPage, { auth, namespace: route.namespace, name: route.name });
      break;
    default:
      page = h("section", null, h("h1", null, "Not found"), h("p", null, "No console page here. ", h(Link, { href: BASE }, "Go to the overview.")));
  }
  return h(
    "div",
    { class: "shell" },
    h(
      "header",
      { class: "topbar" },
      h(Link, { href: BASE, class: "logo" }, "pai"),
      h(
        "nav",
        null,
        nav(BASE, "Overview", route.page === "overview"),
        nav(`${BASE}/agents`, "Agents", route.page === "agents" || route.page === "agent"),
        nav(sessionsHref(), "Sessions", route.page === "sessions" || route.page === "session"),
      ),
      h("span", { class: "spacer" }),
      h("span", { class: "who", id: "who", title: auth.admin ? "The admin token: every namespace" : "A namespace token" }, auth.admin ? "admin" : `namespace ${auth.namespaces.join(", ")}`),
      h("button", { type: "button", id: "signout", onClick: signOut }, "Sign out"),
    ),
    h("main", { class: "page" }, page),
  );
}
