"""An agent calling writ's MCP endpoint with the official MCP Python SDK (PyPI `mcp`).

usage: mcp_client.py URL TOKEN CALLS_JSON
Connects over streamable HTTP with `Authorization: Bearer TOKEN` (none if TOKEN is
empty), initializes, lists the tools, makes each call in CALLS_JSON ([[name, args], ...])
and prints one JSON object: the tool names and each call's result.
"""

import asyncio
import json
import sys

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


async def main() -> None:
    url, token, calls = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = await session.list_tools()
                results = []
                for name, args in calls:
                    result = await session.call_tool(name, args)
                    results.append(
                        {
                            "is_error": result.is_error,
                            "structured": result.structured_content,
                            "text": [getattr(c, "text", None) for c in result.content],
                        }
                    )
                print(json.dumps({"tools": sorted(t.name for t in tools.tools), "results": results}))


asyncio.run(main())
