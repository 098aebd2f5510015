// Starts Swagger UI on /docs against our own OpenAPI document (kept out of the HTML so the
// Content-Security-Policy can forbid inline script).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});
