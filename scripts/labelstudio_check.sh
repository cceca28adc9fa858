#!/usr/bin/env bash
# The manual check of the Label Studio ML backend against a real Label Studio server, on this machine only:
#   bash scripts/labelstudio_check.sh [MODEL_DIR]        (default runs/tiny, from scripts/quickstart.sh)
# It serves MODEL_DIR with `arner serve`, starts Label Studio (a throwaway database in a temp folder),
# creates a project with annotations/labelstudio.xml, connects the backend (http://127.0.0.1:PORT/labelstudio),
# imports two Arabic tasks, retrieves predictions and checks them (character-exact spans, labels, scores,
# model version); then checks that a project offering a label the model lacks is refused at connection.
# Label Studio lives in its own venv (it pins Django, pandas, numpy...): LS_VENV, default
# /tmp/arner-labelstudio-venv, made here on first use (pip install label-studio==$LS_VERSION, ~4 min).
# Ports: ARNER_PORT (default 9090) and LS_PORT (default 8089). Takes about 2 minutes once installed.
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL=${1:-runs/tiny}
LS_VERSION=${LS_VERSION:-1.23.2}
LS_VENV=${LS_VENV:-/tmp/arner-labelstudio-venv}
ARNER_PORT=${ARNER_PORT:-9090}
LS_PORT=${LS_PORT:-8089}
PY=${PYTHON:-.venv/bin/python}
TOKEN=arnercheck$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')

[ -d "$MODEL" ] || { echo "error: no model folder $MODEL (run scripts/quickstart.sh, or give one)" >&2; exit 2; }
if [ ! -x "$LS_VENV/bin/label-studio" ]; then
  echo "installing label-studio==$LS_VERSION into $LS_VENV (a few minutes)"
  python3 -m venv "$LS_VENV"
  "$LS_VENV/bin/pip" install -q "label-studio==$LS_VERSION"
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  # each server was started with setsid: its process group holds it and its children (Django's reloader)
  for pid in "${PIDS[@]}"; do kill -- "-$pid" 2>/dev/null || true; done
  wait "${PIDS[@]}" 2>/dev/null || true  # arner serve lets requests in flight finish first
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "arner serve --model $MODEL on 127.0.0.1:$ARNER_PORT (log: $WORK/arner.log)"
setsid "$PY" -m arner.cli serve --model "$MODEL" --port "$ARNER_PORT" --device cpu >"$WORK/arner.log" 2>&1 &
PIDS+=($!)

echo "label-studio $LS_VERSION on 127.0.0.1:$LS_PORT (log: $WORK/ls.log)"
# ML_BLOCK_LOCAL_IP and SSRF_PROTECTION_ENABLED: Label Studio refuses backends (and their webhook) on
# 127.0.0.1 unless told; no Sentry, no version check: nothing leaves the machine
LABEL_STUDIO_BASE_DATA_DIR="$WORK/ls" ML_BLOCK_LOCAL_IP=false SSRF_PROTECTION_ENABLED=false \
  SENTRY_DSN= FRONTEND_SENTRY_DSN= LATEST_VERSION_CHECK=false COLLECT_ANALYTICS=false \
  setsid "$LS_VENV/bin/label-studio" start --no-browser --port "$LS_PORT" --internal-host 127.0.0.1 \
  --username check@arner.local --password "pw-$TOKEN" --user-token "$TOKEN" --enable-legacy-api-token >"$WORK/ls.log" 2>&1 &
PIDS+=($!)

LS_URL="http://127.0.0.1:$LS_PORT" ARNER_URL="http://127.0.0.1:$ARNER_PORT/labelstudio" TOKEN="$TOKEN" WORK="$WORK" "$PY" - <<'EOF'
"""Label Studio's REST API, as a person clicking through it would use it."""

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

LS, BACKEND, WORK = os.environ["LS_URL"], os.environ["ARNER_URL"], Path(os.environ["WORK"])
HEADERS = {"Authorization": f"Token {os.environ['TOKEN']}", "Content-Type": "application/json"}
CONFIG = Path("annotations/labelstudio.xml").read_text(encoding="utf-8")
TEXTS = ["التقى بوتين وويتكوف في موسكو يوم الجمعة.", "قال لافروف في موسكو يوم الأحد إن روسيا مستعدة للحوار مع واشنطن."]


def call(method: str, url: str, body=None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=HEADERS)
    try:
        with urllib.request.urlopen(request, timeout=120) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait(url: str, seconds: int) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if call("GET", url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(2)
    sys.exit(f"FAIL: {url} did not answer within {seconds} s (logs in {WORK})")


def check(ok: bool, what: str) -> None:
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        sys.exit(1)


t0 = time.monotonic()
wait(f"{BACKEND}/health", 120)
wait(f"{LS}/api/projects", 300)  # first start: Label Studio migrates its database
print(f"both servers up after {time.monotonic() - t0:.0f} s")
version = call("GET", f"{BACKEND}/health")[1]["model_version"]

status, project = call("POST", f"{LS}/api/projects", {"title": "arner check", "label_config": CONFIG})
check(status == 201, f"project created with annotations/labelstudio.xml (id {project.get('id')})")
status, backend = call("POST", f"{LS}/api/ml", {"url": BACKEND, "project": project["id"], "title": "arner"})
check(status == 201 and backend.get("readable_state") == "Connected", f"backend connected: {backend.get('readable_state')}")
check(backend.get("model_version") == version, f"Label Studio took the backend's model version {version}")
status, imported = call("POST", f"{LS}/api/projects/{project['id']}/import", [{"data": {"text": t, "doc": f"check-{n}"}} for n, t in enumerate(TEXTS)])
check(status == 201 and imported["task_count"] == 2, "2 tasks imported")
action = f"{LS}/api/dm/actions?id=retrieve_tasks_predictions&project={project['id']}"
status, done = call("POST", action, {"selectedItems": {"all": True, "excluded": []}})
check(status == 200, f"Retrieve predictions: {done}")

status, tasks = call("GET", f"{LS}/api/tasks?project={project['id']}&fields=all")
tasks = tasks["tasks"] if isinstance(tasks, dict) else tasks
status, preds = call("GET", f"{LS}/api/predictions?project={project['id']}")
by_task = {p["task"]: p for p in preds}
check(len(preds) == 2 and set(by_task) == {t["id"] for t in tasks}, "one prediction per task")
entities = 0
for task in tasks:
    pred, text = by_task[task["id"]], task["data"]["text"]
    check(pred["model_version"] == version and isinstance(pred["score"], float), f"task {task['id']}: model_version {version}, score {pred['score']:.3f}")
    for r in pred["result"]:
        v = r["value"]
        exact = text[v["start"] : v["end"]] == v["text"] and v["labels"][0] in ("ACTOR", "PLACE", "DATE")
        check(exact and (r["from_name"], r["to_name"], r["type"]) == ("label", "text", "labels"), f"  {v['labels'][0]:6} {v['text']} ({r['score']:.3f})")
        entities += 1
check(entities > 0, f"{entities} entities, every one a character-exact span of its task")
status, again = call("POST", action, {"selectedItems": {"all": True, "excluded": []}})
check(len(call("GET", f"{LS}/api/predictions?project={project['id']}")[1]) == 2, "retrieving again adds nothing (same model version)")

bad = CONFIG.replace('<Label value="DATE"', '<Label value="ORG" background="#999"/>\n    <Label value="DATE"')
status, other = call("POST", f"{LS}/api/projects", {"title": "arner check: a label the model lacks", "label_config": bad})
status, refused = call("POST", f"{LS}/api/ml", {"url": BACKEND, "project": other["id"], "title": "arner"})
check(status == 400, f"a project offering ORG is refused at connection: {json.dumps(refused, ensure_ascii=False)[:160]}")
log = (WORK / "arner.log").read_text(encoding="utf-8")
check("'ORG' are not labels of this model" in log, "the backend's console says why: " + next(ln for ln in log.splitlines() if "'ORG'" in ln))
print(f"Label Studio check passed in {time.monotonic() - t0:.0f} s")
EOF
