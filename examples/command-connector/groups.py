#!/usr/bin/env python3
"""A writ `command` connector in Python: group memberships kept in a JSON file.

It stands in for whatever system you manage (an internal admin API, a SaaS without
SCIM): replace `load` and `save` with calls to that system and keep the rest.

writ runs it once per call with one JSON document on stdin:
    {"action": "grant" | "revoke" | "check" | "list",
     "target": "...", "role": "...", "account": "..."}
and answers are judged by the exit status (0: done; anything else: failed, stderr is
the reason) and, for `check` and `list`, one JSON document on stdout:
    check -> {"held": true | false}
    list  -> {"accounts": ["...", ...]}   (every account holding `role`)

Every call must be idempotent: writ repeats any call whose outcome it did not learn.

Usage in writ.toml:
    [[target]]
    name = "groups"
    kind = "command"
    command = "examples/command-connector/groups.py"
    args = ["--state", "/var/lib/writ-groups/groups.json"]
"""

import argparse
import fcntl
import json
import os
import sys
import tempfile


def load(path):
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except FileNotFoundError:
        return {}


def save(path, groups):
    # Written beside the old file and renamed over it: a crash leaves one or the other.
    folder = os.path.dirname(os.path.abspath(path))
    with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, encoding="utf-8") as file:
        json.dump(groups, file, sort_keys=True)
        file.flush()
        os.fsync(file.fileno())
    os.replace(file.name, path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", required=True, help="the JSON file of memberships")
    state = parser.parse_args().state
    call = json.load(sys.stdin)
    action, role, account = call["action"], call["role"], call["account"]

    # One call at a time: writ may run several at once.
    with open(state + ".lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        groups = load(state)
        members = groups.get(role, [])
        if action == "check":
            json.dump({"held": account in members}, sys.stdout)
        elif action == "list":
            json.dump({"accounts": members}, sys.stdout)
        elif action == "grant":
            if account not in members:
                groups[role] = members + [account]
                save(state, groups)
        elif action == "revoke":
            if account in members:
                groups[role] = [held for held in members if held != account]
                save(state, groups)
        else:
            print(f"unknown action {action!r}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
