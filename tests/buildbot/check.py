#!/usr/bin/env python3
"""Feeds webhook bodies to Buildbot's Gitea handler (PyPI buildbot-gitea,
`buildbot_gitea.webhook.GiteaHandler`) as Gitea's delivery would: a request with the
headers `X-Gitea-Event` / `X-Gitea-Event-Type` (src/relay/delivery.rs sends them) and the
JSON body, through `getChanges`.

    check.py FILE...      each FILE: {"event": X-Gitea-Event, "event_type": X-Gitea-Event-Type,
                          "body": the body}
    check.py --self-test  shows that a broken body fails

Exit 1, naming the file and the exception, when the handler raises, or returns no change
where one is expected: a push with commits (or a new tag's push, whose head commit the
handler takes), a pull_request opened / reopened / synchronized (not merged). What is
expected is read from the body itself, not from the caller.

One body of Gitea's own makes the handler raise: a deleted tag's push (Gitea's
services/repository/push.go sends `commits: []` and `head_commit: null`, and
buildbot-gitea 1.8.0's `process_push` takes `[head_commit]` for a tag ref without commits,
then calls `.get` on `None`). The sourcer's push of a new tag whose feed row was cut to
`{}` has the same shape (the row names no head commit). Such a body (a tag's push without
commits or head commit) is reported as `KNOWN` (not a failure) as long as the handler still
fails on it; nothing else is.
"""

import io
import json
import sys

from buildbot_gitea.webhook import GiteaHandler


class FakeRequest:
    """The parts of a twisted request `GiteaHandler.getChanges` reads."""

    def __init__(self, headers, body):
        self._headers = {k.lower(): v.encode() for k, v in headers.items()}
        self.content = io.BytesIO(body)
        self.args = {}

    def getHeader(self, name):
        return self._headers.get(name.lower())


def expects_change(event, body):
    """Whether Buildbot must make a change of this body (see the module's docstring)."""
    if event == "push":
        if body.get("commits"):
            return True
        return body["ref"].startswith("refs/tags/") and body.get("head_commit") is not None
    if event == "pull_request":
        return body.get("action") in ("opened", "reopened", "synchronized") and not body[
            "pull_request"
        ].get("merged")
    return False


def known_failure(event, body):
    """A deleted tag's push, which buildbot-gitea cannot take from Gitea either."""
    return (
        event == "push"
        and body.get("ref", "").startswith("refs/tags/")
        and not body.get("commits")
        and body.get("head_commit") is None
    )


def get_changes(event, event_type, body_bytes):
    """`(changes, None)` or `(None, exception text)`."""
    handler = GiteaHandler(None, {})
    request = FakeRequest(
        {
            "X-Gitea-Event": event,
            "X-Gitea-Event-Type": event_type,
            "Content-Type": "application/json",
        },
        body_bytes,
    )
    out = []
    d = handler.getChanges(request)
    d.addCallbacks(
        lambda r: out.append((r[0], None)),
        lambda f: out.append((None, "%s: %s" % (f.type.__name__, f.getErrorMessage()))),
    )
    if not out:
        return None, "getChanges did not finish"
    return out[0]


def check(event, event_type, body):
    """`None` when Buildbot takes the body, else what went wrong; `"KNOWN: ..."` for the
    known failure."""
    changes, error = get_changes(event, event_type, json.dumps(body).encode())
    if error is not None:
        if known_failure(event, body):
            return "KNOWN: " + error
        return "raised " + error
    if known_failure(event, body):
        return "took the deleted tag's push (%d changes): drop the known failure" % len(changes)
    if expects_change(event, body) and not changes:
        return "no change for a body that must make one"
    if event == "push" and changes:
        ids = {c["id"] for c in body.get("commits") or []} or {body["head_commit"]["id"]}
        got = {c["revision"] for c in changes}
        if got != ids:
            return "changes of revisions %s, the body's commits are %s" % (sorted(got), sorted(ids))
    return None


def self_test():
    """The checker fails a broken body: a push without `repository`, a pull request
    without `head`, a push whose commit has no `timestamp`."""
    push = {
        "ref": "refs/heads/main",
        "commits": [
            {
                "id": "a" * 40,
                "message": "m",
                "url": "u",
                "author": {"name": "n", "email": "e"},
                "timestamp": "2017-12-09T01:35:07Z",
                "added": [],
                "removed": [],
                "modified": [],
            }
        ],
        "repository": {
            "ssh_url": "git@g:o/r.git",
            "full_name": "o/r",
            "name": "r",
            "owner": {"username": "o"},
        },
    }
    assert check("push", "push", push) is None, check("push", "push", push)
    broken = dict(push)
    del broken["repository"]
    assert check("push", "push", broken).startswith("raised KeyError"), check("push", "push", broken)
    no_time = json.loads(json.dumps(push))
    del no_time["commits"][0]["timestamp"]
    assert check("push", "push", no_time).startswith("raised"), check("push", "push", no_time)
    none = json.loads(json.dumps(push))
    none["commits"] = []
    assert check("push", "push", none) is None
    pull = {"action": "opened", "pull_request": {"mergeable": True, "merged": False}}
    assert check("pull_request", "pull_request", pull).startswith("raised KeyError")
    unmergeable = {"action": "opened", "pull_request": {"mergeable": False, "merged": False}}
    assert check("pull_request", "pull_request", unmergeable) == (
        "no change for a body that must make one"
    )
    print("self-test: broken bodies fail")


def main(argv):
    if argv == ["--self-test"]:
        self_test()
        return 0
    failed = 0
    for path in argv:
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
            problem = check(d["event"], d["event_type"], d["body"])
        except Exception as e:  # a file that cannot be read or is not the format
            problem = "unreadable: %s: %s" % (type(e).__name__, e)
        if problem is None:
            print("ok    %s" % path)
        elif problem.startswith("KNOWN"):
            print("%s %s" % (problem, path))
        else:
            print("FAIL  %s: %s" % (path, problem))
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
