#!/usr/bin/env python3
"""Checks OCSF events, one JSON object per line on stdin, as a strict SIEM would.

Each event is validated against the official OCSF JSON schema of its
`metadata.version`, for its class, with exactly the profiles it declares in
`metadata.profiles` (ocsf-json-schema bundles the schemas; jsonschema validates).
Then what a schema cannot say: `type_uid` is `class_uid * 100 + activity_id`, the
category is the class's, and every caption (`class_name`, `category_name`,
`activity_name`, `type_name`, `severity`, `status`, `action`, `disposition`) is the one
the schema gives its id — except for id 99 ("Other"), whose caption is the source's own.

Prints each problem and a summary; exits 1 if there was any.
"""

import json
import sys

from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

CAPTIONS = {
    "activity_id": "activity_name",
    "severity_id": "severity",
    "status_id": "status",
    "action_id": "action",
    "disposition_id": "disposition",
    "category_uid": "category_name",
}


def main() -> int:
    raw_schemas, embedded, validators = {}, {}, {}
    problems, checked = 0, 0

    def problem(where: str, text: str) -> None:
        nonlocal problems
        problems += 1
        print(f"{where}: {text}")

    for number, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        event = json.loads(line)
        checked += 1
        metadata = event.get("metadata", {})
        where = f"event {number} (seq {metadata.get('sequence')}, {event.get('type_name')})"
        version = metadata.get("version")
        if version not in raw_schemas:
            raw_schemas[version] = get_ocsf_schema(version=version)
            embedded[version] = OcsfJsonSchemaEmbedded(raw_schemas[version])
        raw = raw_schemas[version]
        class_uid = event.get("class_uid")
        class_name = embedded[version].lookup_class_name_from_uid(class_uid=class_uid)
        profiles = tuple(sorted(metadata.get("profiles", [])))
        key = (version, class_name, profiles)
        if key not in validators:
            schema = embedded[version].get_class_schema(
                class_name=class_name, profiles=list(profiles)
            )
            validators[key] = Draft202012Validator(schema)
        for error in validators[key].iter_errors(event):
            path = "/".join(str(p) for p in error.absolute_path) or "(event)"
            problem(where, f"{path}: {error.message[:300]}")

        definition = raw["classes"][class_name]
        attributes = definition["attributes"]
        if event.get("type_uid") != class_uid * 100 + event.get("activity_id", -1):
            problem(where, f"type_uid {event.get('type_uid')} is not class_uid * 100 + activity_id")
        if event.get("category_uid") != definition["category_uid"]:
            problem(where, f"category_uid {event.get('category_uid')} is not the class's {definition['category_uid']}")
        if event.get("class_name") != definition["caption"]:
            problem(where, f"class_name {event.get('class_name')!r} is not {definition['caption']!r}")
        for id_name, caption_name in CAPTIONS.items():
            if id_name not in event:
                continue
            value = event[id_name]
            enum = attributes.get(id_name, {}).get("enum", {})
            if str(value) not in enum:
                problem(where, f"{id_name} {value} is not one of {sorted(enum, key=int)}")
                continue
            if value == 99:
                continue
            expected = enum[str(value)]["caption"]
            if event.get(caption_name) != expected:
                problem(where, f"{caption_name} {event.get(caption_name)!r} is not {expected!r} ({id_name} {value})")
        activity = attributes["activity_id"]["enum"].get(str(event.get("activity_id")), {})
        if event.get("activity_id") != 99:
            expected = f"{definition['caption']}: {activity.get('caption')}"
            if event.get("type_name") != expected:
                problem(where, f"type_name {event.get('type_name')!r} is not {expected!r}")

    print(f"{checked} events checked, {problems} problems")
    return 1 if problems or not checked else 0


if __name__ == "__main__":
    sys.exit(main())
