/* khttpd-book: the "Run live" buttons of the live-repl directive (book/_ext/khttpd_book.py).
   A click embeds the site's JupyterLite REPL (lite/repl/), which runs the button's code as
   soon as Python has started in the reader's browser, and reports progress while it starts. */
(function () {
  "use strict";
  var POLL_MS = 500;

  function phase(frame) {
    var win, doc;
    try { win = frame.contentWindow; doc = frame.contentDocument; } catch (e) { return "loading"; }
    if (!win || !doc || !win.jupyterapp) { return "loading"; }
    if (doc.querySelector(".jp-CodeConsole-content .jp-OutputArea-output")) { return "running"; }
    return "starting";
  }

  var TEXT = {
    loading: "Loading JupyterLite",
    starting: "Starting Python in your browser (Pyodide, with khttpd_py, ipywidgets and plotly)",
    running: "Running: the controls below are live"
  };

  function start(box) {
    var src = box.getAttribute("data-src");
    var status = box.querySelector(".khttpd-live-status");
    var button = box.querySelector(".khttpd-live-run");
    if (window.location.protocol === "file:") {
      /* JupyterLite fetches its files and runs a service worker: neither works from file:// */
      status.textContent = "The live pages need the site served over HTTP: run "
        + "'make serve-book' and open http://127.0.0.1:8000/ (this page was opened as a file).";
      return;
    }
    button.disabled = true;
    var frame = document.createElement("iframe");
    frame.className = "khttpd-live-frame";
    frame.src = src;
    frame.title = "Live Python (JupyterLite)";
    frame.setAttribute("loading", "eager");
    box.appendChild(frame);
    var began = Date.now();
    var timer = setInterval(function () {
      var now = phase(frame);
      var secs = Math.round((Date.now() - began) / 1000);
      if (now === "running") {
        status.textContent = TEXT.running + " (ready after " + secs + " s).";
        clearInterval(timer);
        return;
      }
      status.textContent = TEXT[now] + "... " + secs + " s (usually 20-40 s the first time)";
    }, POLL_MS);
  }

  function init() {
    document.querySelectorAll(".khttpd-live").forEach(function (box) {
      var button = box.querySelector(".khttpd-live-run");
      if (button) { button.addEventListener("click", function () { start(box); }); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
