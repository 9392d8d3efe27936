"""The REST API (`dhf api`): generation jobs over HTTP for other systems, secured by API keys.
The only package that imports FastAPI; routes live in `api.routers`, one module per resource."""
