// The proof of work of the registration and email forms (ALTCHA, web/templates/_forms.html).
// Everything comes from our own static files, as the pages' security policy wants: the widget
// without inline styles, and its PBKDF2 worker as a file. Its texts come from the page, in the
// page's language. Without this script (no JavaScript, an old phone) the forms still work:
// the request is then counted under the tighter limit for requests without a proof.
import "../altcha/altcha.min.js";

const pbkdf2Worker = new URL("../altcha/workers/pbkdf2.js", import.meta.url);
globalThis.$altcha.algorithms.set("PBKDF2/SHA-256", () => new Worker(pbkdf2Worker));

for (const widget of document.querySelectorAll("altcha-widget[data-texts]")) {
  globalThis.$altcha.i18n.set(widget.getAttribute("language"), JSON.parse(widget.dataset.texts));
  // A challenge lasts a few minutes: one that expired before the form was sent is solved again then.
  widget.addEventListener("expired", () => widget.reset());
  // A second tap on the button while the proof is being computed would send the form without it.
  widget.closest("form")?.addEventListener("submit", (event) => {
    if (widget.getState() === "verifying") {
      event.preventDefault();
    }
  });
}
