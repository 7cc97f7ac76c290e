"""Tools a bot may call: OpenAPI operations over HTTP, MCP tools, through one gateway."""
