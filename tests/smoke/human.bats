#!/usr/bin/env bats
# The blind human evaluation on the real smoke run's replies (tests/run.sh runs it after make
# smoke): make human-pack draws a packet of 6 scenarios, make human-eval serves the rating page,
# three simulated raters rate it in headless Chromium (tests/lib/rate_in_chromium.py: two by
# clicking, one by keyboard), the server is killed mid-session and restarted, and make
# human-report writes the results into report/smoke.md. Each test builds on the one before.

load ../test_helper

PACKET=results/human/smoke

setup_file() {
  cd "$SMOKE_ROOT" || return 1
  rm -rf "${SMOKE_ROOT:?}/$PACKET" "$SMOKE_ROOT/results/smoke/lab-human.json"
}

setup() {
  smoke_setup
  command -v chromium >/dev/null || fail "chromium is not installed (apt-get install -y chromium)"
  GIVEN="$BATS_FILE_TMPDIR/given.jsonl"
}

teardown() {
  if [[ -n "${PAGE_PID:-}" ]]; then kill -- "-$PAGE_PID" 2>/dev/null || true; fi
}

# start_page: make human-eval in its own process group (PAGE_PID) on a free port (PAGE_PORT).
start_page() {
  PAGE_PORT="${PAGE_PORT:-$(free_port)}"
  HUMAN_EVAL_PORT="$PAGE_PORT" setsid make human-eval >>"$BATS_FILE_TMPDIR/page.log" 2>&1 &
  PAGE_PID=$!
  wait_for_port "$PAGE_PORT" 300 || { cat "$BATS_FILE_TMPDIR/page.log"; fail "the rating page did not start"; }
}

# rate RATER[:keyboard]... [--items K]: the simulated raters, in Chromium.
rate() {
  "$LAB_PYTHON" "$SRC_ROOT/tests/lib/rate_in_chromium.py" --base "http://127.0.0.1:$PAGE_PORT" --packet "$PACKET" \
    --given "$GIVEN" --forbidden smoke,dialog-judge,crisis-judge "$@"
}

given_answers_stored() { "$LAB_PYTHON" "$SRC_ROOT/tests/lib/check_given.py" "$PACKET" "$GIVEN"; }

@test "make human-pack N=6: six scenarios of every source from the smoke run's replies, no model name in the packet, the key apart" {
  run make human-pack N=6
  assert_success
  assert_output --partial "packet: 6 scenarios (cpsycoune 1, crisis 1, heldout 2, psydt 2), models smoke, smoke-base, raters rater1, rater2, rater3"
  run grep -c smoke "$PACKET/packet.json"
  assert_output 0
  run stat -c %a "$PACKET/key.json" "$PACKET/raters.json" "$PACKET/links.txt"
  assert_output $'600\n600\n600'
  # Each reply is the final channel EvalScope's review kept for that model and row.
  run "$LAB_PYTHON" - "$PACKET" <<'EOF'
import json, sys
from pathlib import Path
packet_dir = Path(sys.argv[1])
packet, key = (json.loads((packet_dir / n).read_text()) for n in ("packet.json", "key.json"))
for item in packet["items"]:
    for reply in item["replies"]:
        k = key["replies"][reply["id"]]
        review = Path("results/smoke") / k["model"] / k["benchmark"] / "reviews" / k["model"]
        rows = [json.loads(line) for f in review.glob("*.jsonl") for line in f.read_text().splitlines()]
        row = next(r for r in rows if r["index"] == k["index"])
        assert reply["text"] == (row["messages"][-1]["metadata"]["harmony"]["final"] or ""), (item["id"], k)
print("replies checked:", sum(len(i["replies"]) for i in packet["items"]))
EOF
  assert_success
  assert_output "replies checked: 12"
}

@test "three raters rate it in headless Chromium (clicks, keyboard); the server killed mid-session loses no given answer" {
  [[ -f "$PACKET/packet.json" ]] || skip "needs the packet of the test before"
  start_page
  run ss -ltnH "sport = :$PAGE_PORT"
  assert_output --partial "127.0.0.1:$PAGE_PORT"
  # rater1 rates 3 of the 6 by clicking; every answer the page showed saved is in the database.
  run rate --rater rater1 --items 3
  assert_success
  run given_answers_stored
  assert_success
  local before="$output"
  ((before >= 27))
  # Killed (SIGKILL, the whole group) in the middle of rater1's session: nothing given is lost.
  kill -KILL -- "-$PAGE_PID"
  wait "$PAGE_PID" 2>/dev/null || true
  run given_answers_stored
  assert_success
  assert_output "$before"
  start_page
  # rater1 resumes at scenario 4 (the driver checks where the page opens), then rater2 by
  # clicking and rater3 by keyboard alone rate all six.
  run rate --rater rater1 --rater rater2 --rater rater3:keyboard
  assert_success
  assert_line "rater1: resumed at /rate/4 (3 / 6)"
  assert_line "rater3: rated 6 scenarios by keyboard"
  run given_answers_stored
  assert_success
  ((output >= 3 * 6 * 9))
  # Without a rater's token nothing is served; no token is in a process listing or the page's log.
  run curl -s -o /dev/null -w '%{http_code}' --noproxy '*' "http://127.0.0.1:$PAGE_PORT/api/raters/rater1/answers"
  assert_output 401
  local token processes
  processes="$(ps -eo args)"
  for token in $(jq -r '.[]' "$PACKET/raters.json"); do
    [[ "$processes" != *"$token"* ]] || fail "a rater's token is in a process listing"
    # -e: a token may start with '-'.
    run grep -cF -e "$token" "$BATS_FILE_TMPDIR/page.log"
    assert_output 0
  done
}

@test "make human-report unblinds the ratings into report/smoke.md (9.5) and make table's columns" {
  [[ -s "$GIVEN" ]] || skip "needs the ratings of the test before"
  run make human-report
  assert_success
  run jq -r '[.answers >= 162, (.raters_with_answers | length), (.means | map(.model) | join(",")), .preferences[0].first,
    (.agreement.relevance | has("alpha"))] | map(tostring) | join(" ")' results/smoke/lab-human.json
  assert_output "true 3 smoke,smoke-base smoke true"
  run sed -n '/^### 9.5 人工盲评/,/^## 10\./p' report/smoke.md
  assert_line --partial "3 名评分人（共 3 名）对 6 个场景（CPsyCounE 案例 1 个、危机情境消息 1 个、留出对话 2 个、PsyDTCorpus 测试对话 2 个）"
  # shellcheck disable=SC2016 # backticks of Markdown
  assert_line --regexp '^\| `smoke`（微调后） \| [1-5]\.[0-9]{2} \[[0-9.]+, [0-9.]+\]（n=18）'
  # shellcheck disable=SC2016 # backticks of Markdown
  assert_line --partial '| `smoke`（微调后） vs `smoke-base`（基座） |'
  assert_line --regexp '^\| 相关性 \| (-?[0-9]\.[0-9]{3}|—.*) \| [0-9]+（[0-9]+） \|$'
  assert_line --partial "LLM 评审没有对这些回复给出有效评分"
  run make table EXPS=smoke
  assert_success
  run head -5 report/table-smoke.md
  assert_output --partial "人工评分 共情（1–5）"
  assert_output --partial "人工评分 对基座胜率"
}
