// The API's try-it page: Swagger UI from this app's own assets (no CDN), reading /openapi.json.
// "Authorize" takes the key `ie serve` printed; requests then send it in the X-API-Key header.
"use strict";
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, persistAuthorization: false });
