// The API reference at /api/docs (frontend/api-docs.html): Swagger UI rendering the service's own OpenAPI
// document. A file of its own rather than an inline script, so the page keeps the Content-Security-Policy
// every page has (script-src 'self'). Not an ES module: Swagger UI's bundle defines a global.
/* global SwaggerUIBundle */
window.ui = SwaggerUIBundle({
  url: "/api/v1/openapi.json",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  deepLinking: true,
  displayOperationId: true,
  // Its default would show a badge fetched from validator.swagger.io, with this document's address in it.
  validatorUrl: null,
});
