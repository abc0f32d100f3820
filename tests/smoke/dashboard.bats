#!/usr/bin/env bats
# make dashboard on the real smoke run (tests/run.sh runs it after make smoke): SwanLab's
# local dashboard, opened in headless Chromium (Debian's package) with every host but
# 127.0.0.1 unresolvable, lists the smoke run's training and evaluation runs and draws
# the training run's charts. And the smoke report's HTML page, in the same Chromium: its
# headline table lies on the first screen (a screenshot kept in tests/artefacts/).

load ../test_helper

setup() {
  smoke_setup
  command -v chromium >/dev/null || fail "chromium is not installed (apt-get install -y chromium)"
}

teardown() {
  if [[ -n "${DASHBOARD_PID:-}" ]]; then kill -- "-$DASHBOARD_PID" 2>/dev/null || true; fi
}

# The page as Chromium has it after its scripts ran, with no network beyond loopback.
rendered_page() {
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$BATS_TEST_TMPDIR/chromium" \
    --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" --virtual-time-budget=15000 \
    --dump-dom "$1" 2>"$BATS_TEST_TMPDIR/chromium.log"
}

@test "make dashboard serves the smoke run's local SwanLab runs, offline, on 127.0.0.1" {
  local port
  port="$(free_port)"
  DASHBOARD_PORT="$port" setsid make dashboard >"$BATS_TEST_TMPDIR/dashboard.log" 2>&1 &
  DASHBOARD_PID=$!
  wait_for_port "$port" 300 || { cat "$BATS_TEST_TMPDIR/dashboard.log"; fail "the dashboard did not start"; }
  run grep -F "[dashboard] open http://127.0.0.1:$port" "$BATS_TEST_TMPDIR/dashboard.log"
  assert_success
  # Bound to loopback only.
  run ss -ltnH "sport = :$port"
  assert_output --partial "127.0.0.1:$port"
  # The project page lists the training run and both models' evaluation runs.
  run rendered_page "http://127.0.0.1:$port/"
  assert_success
  assert_output --partial ">lab-smoke<"
  for run_name in smoke smoke-eval smoke-base-eval; do
    grep -qF ">$run_name<" <<<"$output" || fail "the dashboard does not list the run $run_name"
  done
  # The training run's page draws its charts (canvases) of the training and held-out loss.
  local id
  id="$(curl -s --noproxy '*' "http://127.0.0.1:$port/api/v1/project" | jq -r '.data.experiments[] | select(.name == "smoke") | .id')"
  [[ "$id" =~ ^[0-9]+$ ]] || fail "no experiment 'smoke' in the dashboard's API"
  run rendered_page "http://127.0.0.1:$port/experiment/$id"
  assert_success
  assert_output --partial ">train/loss<"
  assert_output --partial ">eval/loss<"
  assert_output --partial "<canvas"
}

# The report's first screen: a 1280 x 800 window (its page area is what Chromium reports as
# innerHeight). A copy of the page with a probe appended (the report has no script) writes the
# summary's table's place into the DOM Chromium dumps.
FIRST_SCREEN=1280,800
PROBE='<script>
const heading = [...document.querySelectorAll("h2")].find(h => h.textContent.trim() === "摘要");
let table = heading; while (table && table.tagName !== "TABLE") table = table.nextElementSibling;
const box = table ? table.getBoundingClientRect() : {top: -1, bottom: -1};
const probe = document.createElement("pre");
probe.textContent = "PROBE " + JSON.stringify({found: !!table, top: box.top, bottom: box.bottom, height: innerHeight,
  rows: table ? table.rows.length : 0, first: table ? table.rows[1].cells[0].textContent : ""});
document.body.appendChild(probe);
</script>'

@test "report/smoke.html in headless Chromium: the headline table on the first screen, offline; a screenshot kept" {
  local page="$BATS_TEST_TMPDIR/smoke.html" artefacts="${TEST_ARTEFACTS:-$SRC_ROOT/tests/artefacts}" probe
  PROBE="$PROBE" "$LAB_PYTHON" -c 'import os, sys
text = open(sys.argv[1], encoding="utf-8").read()
open(sys.argv[2], "w", encoding="utf-8").write(text.replace("</body>", os.environ["PROBE"] + "</body>"))' \
    report/smoke.html "$page"
  run chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$BATS_TEST_TMPDIR/chromium" \
    --host-resolver-rules="MAP * ~NOTFOUND" --window-size="$FIRST_SCREEN" --dump-dom "file://$page"
  assert_success
  probe="$(grep -o 'PROBE {[^<]*' <<<"$output" | sed 's/^PROBE //')"
  [[ -n "$probe" ]] || fail "the probe did not run"
  echo "# first screen: $probe" >&3
  run jq -e '.found and .top >= 0 and .bottom <= .height and .first == "C-Eval"' <<<"$probe"
  assert_success
  # One row per headline measure of the markdown summary, and the header.
  assert_equal "$(jq .rows <<<"$probe")" "$(sed '/^## 1\. /q' report/smoke.md | grep -c '^| ')"
  mkdir -p "$artefacts"
  rm -f "$artefacts/report-smoke-first-screen.png"
  chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$BATS_TEST_TMPDIR/chromium" \
    --host-resolver-rules="MAP * ~NOTFOUND" --window-size="$FIRST_SCREEN" \
    --screenshot="$artefacts/report-smoke-first-screen.png" "file://$SRC_ROOT/report/smoke.html" \
    2>"$BATS_TEST_TMPDIR/screenshot.log"
  run od -An -tx1 -N8 "$artefacts/report-smoke-first-screen.png"
  assert_output " 89 50 4e 47 0d 0a 1a 0a"
}
