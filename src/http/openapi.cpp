// GET /api/v1/openapi.json: the API's OpenAPI 3.1 document. The document is src/http/
// openapi.json, embedded at build time (openapi_doc.cpp.in); tests/http/openapi_test.cpp
// checks that it and the router agree and that every answer matches its schema.
#include "http/api.h"

namespace factory::http {

extern const char* const kOpenApiJson;  // generated: openapi_doc.cpp

void add_openapi_routes(Router* router, ApiContext*) {
  router->add({.method = "GET",
               .pattern = "/api/v1/openapi.json",
               .role = Role::kPublic,
               .handler = [](const Request&) { return json_response(kOpenApiJson); }});
}

}  // namespace factory::http
