"""The web channel (chat API and page), the REST API, health and metrics, on FastAPI."""
