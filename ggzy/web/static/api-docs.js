// Starts Swagger UI on /docs (no inline script: the page's CSP allows only the app's own files).
(function () {
  "use strict";
  var holder = document.getElementById("swagger-ui");
  if (!holder || typeof window.SwaggerUIBundle !== "function") {
    return;
  }
  window.SwaggerUIBundle({ url: holder.dataset.openapi, dom_id: "#swagger-ui", deepLinking: true });
})();
