// Renders /openapi.json with the vendored Swagger UI; everything is served by the api itself.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});
