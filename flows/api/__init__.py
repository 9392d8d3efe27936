"""The REST API (`dhf api`): generation jobs over HTTP for other systems, secured by API keys."""
