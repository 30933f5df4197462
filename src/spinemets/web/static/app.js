// spinemets: progressive enhancement only. Every page works without this file.
// 1. Forms marked data-live="ID" re-render the element #ID in place as they change, by fetching the same
//    GET URL with the header "X-Fragment: result" (the server renders and escapes the HTML).
// 2. Buttons marked data-action="print" print the page.
(function () {
  "use strict";

  function query(form) {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (typeof value === "string" && value !== "") { params.append(key, value); }
    });
    return params.toString();
  }

  function live(form) {
    var target = document.getElementById(form.getAttribute("data-live"));
    if (!target) { return; }
    var timer = null;
    var seq = 0;
    function update() {
      var qs = query(form);
      var url = form.getAttribute("action") + (qs ? "?" + qs : "");
      var mine = ++seq;
      target.setAttribute("aria-busy", "true");
      fetch(url, { headers: { "X-Fragment": "result" }, credentials: "same-origin" })
        .then(function (response) { return response.text(); })
        .then(function (html) {
          if (mine !== seq) { return; }  // a later change already went out
          target.innerHTML = html;        // server-rendered, autoescaped markup from our own origin
          target.removeAttribute("aria-busy");
          if (window.history && window.history.replaceState) { window.history.replaceState(null, "", url); }
        })
        .catch(function () { target.removeAttribute("aria-busy"); });
    }
    function schedule() {
      if (timer) { clearTimeout(timer); }
      timer = setTimeout(update, 120);
    }
    form.addEventListener("change", schedule);
    form.addEventListener("input", function (event) {
      var t = event.target;
      if (t && (t.type === "number" || t.type === "text" || t.type === "search")) { schedule(); }
    });
  }

  function init() {
    var forms = document.querySelectorAll("form[data-live]");
    for (var i = 0; i < forms.length; i++) { live(forms[i]); }
    document.addEventListener("click", function (event) {
      var el = event.target.closest ? event.target.closest("[data-action=print]") : null;
      if (el) { event.preventDefault(); window.print(); }
    });
    document.documentElement.classList.add("js");
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
