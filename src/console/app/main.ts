/** The console's entry point: the stylesheet (bundled beside the script) and the app in #app. */
import { render } from "preact";
import { App } from "./app";
import { h } from "./ui";
import "../styles.css";

render(h(App, null), document.getElementById("app")!);
