"""The Studio as an MCP server (streamable HTTP at `/mcp`): AI coding agents build bots with the
same commands, roles and audit as chat."""
