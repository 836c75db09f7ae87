"""What every route shares: problem+json errors and their handlers, middleware, responses, the OpenAPI
document, logging, metrics and the health endpoints."""
