// Draws every chart of a page from the JSON option the server embedded beside it (no inline script).
(function () {
  "use strict";
  function draw() {
    var holders = document.querySelectorAll("[data-chart]");
    if (!holders.length) { return; }
    if (typeof window.echarts === "undefined") {
      holders.forEach(function (el) { el.textContent = "图表组件未加载（echarts.min.js 未构建，请运行 make）"; });
      return;
    }
    holders.forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-chart"));
      if (!source) { return; }
      var chart = window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(JSON.parse(source.textContent));
      el.setAttribute("data-rendered", "true");
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }
  // Small conveniences of the forms, here because the pages allow no inline script.
  function forms() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.requestSubmit(); });
    });
    document.querySelectorAll("[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = document.getElementById(button.getAttribute("data-copy"));
        if (source && navigator.clipboard) { navigator.clipboard.writeText(source.textContent.trim()); button.textContent = "已复制"; }
      });
    });
  }
  function start() { draw(); forms(); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
