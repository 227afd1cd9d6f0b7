"""Runs scim2-tester (an RFC 7643/7644 conformance checker) against a running writ.

Usage: scim_check.py BASE_URL SECRET
Prints one JSON object per check on stdout: title, status, reason, resource_type.

The checker is given the resources as writ publishes them (/Schemas, /ResourceTypes)
less writ's own User extension: scim2-tester 0.5.2 fills dateTime attributes with
random strings (it has no dateTime generator), so it cannot exercise that extension's
validUntil; crates/writ/tests/scim.rs tests it itself. The checker still reads and
checks every discovery document writ publishes, the extension's included.
"""

import json
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import ResourceType, Schema, ScimProvider
from scim2_tester import check_server

WRIT_EXTENSION = "urn:ietf:params:scim:schemas:extension:writ:2.0:User"


def provider(http: Client) -> ScimProvider:
    schemas = [
        Schema.model_validate(schema)
        for schema in http.get("/Schemas").json()["Resources"]
        if schema["id"] != WRIT_EXTENSION
    ]
    types = []
    for resource_type in http.get("/ResourceTypes").json()["Resources"]:
        resource_type["schemaExtensions"] = [
            extension
            for extension in resource_type.get("schemaExtensions", [])
            if extension["schema"] != WRIT_EXTENSION
        ]
        types.append(ResourceType.model_validate(resource_type))
    return ScimProvider.from_discovery(schemas, types)


def main() -> None:
    base, secret = sys.argv[1], sys.argv[2]
    http = Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    client = SyncSCIMClient(http, provider=provider(http))
    for result in check_server(client, raise_exceptions=False):
        print(
            json.dumps(
                {
                    "title": result.title,
                    "status": result.status.name,
                    "reason": str(result.reason) if result.reason else None,
                    "resource_type": getattr(result, "resource_type", None),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
