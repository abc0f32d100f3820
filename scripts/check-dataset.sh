#!/usr/bin/env bash
# Checks a ShareGPT JSONL training file in one jq pass: every line is a JSON object
# whose `conversations` is a non-empty list of {from, value} messages, an optional
# system message first, then human/gpt alternating from human and ending with gpt,
# every value a non-empty string. Reports the first bad row and how many are bad.
#   scripts/check-dataset.sh FILE
set -euo pipefail
export STEP_NAME="${STEP_NAME:-check-dataset}"
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# Prints "ROWS<TAB>BAD<TAB>FIRST_BAD_LINE<TAB>REASON" for the file on stdin.
# shellcheck disable=SC2016 # jq source, not shell
SUMMARISE_ROWS_JQ='
# Whitespace only. jq compiles a regex on every call, so run it only when the first
# character is a space: 5000 rows stay well under a second.
def blank: . == "" or ((.[0:1] | IN(" ", "\t", "\n", "\r", "\u00a0", "\u3000")) and test("^\\s*$"));

def message_error($i; $m; $first_turn):
  "message \($i + 1)" as $at
  | if ($m | type) != "object" or ($m | has("from") and has("value") | not) then "\($at) is not a {from, value} object"
    elif ($m.from | IN("human", "gpt", "system") | not) then "\($at) has unknown role \($m.from | tojson) (known: human, gpt, and system first)"
    elif $m.from == "system" and $i != 0 then "\($at) is a system message; only the first message may be"
    elif ($m.value | type) != "string" then "\($at) (\($m.from)) has a value that is not a string"
    elif ($m.value | blank) then "\($at) (\($m.from)) has an empty value"
    elif $m.from != "system" and $m.from != (if ($i - $first_turn) % 2 == 0 then "human" else "gpt" end) then
      "\($at) is \($m.from) after \(if $i == $first_turn then "the start" else "another \($m.from)" end) (human and gpt must alternate, starting with human)"
    else empty end;

def conversation_error:
  . as $msgs
  | (if ($msgs[0] | type) == "object" and $msgs[0].from? == "system" then 1 else 0 end) as $first_turn
  | [range(0; length) as $i | message_error($i; $msgs[$i]; $first_turn)][0]
    // if length == $first_turn then "has only a system message"
       elif $msgs[-1].from != "gpt" then "ends with \($msgs[-1].from), not gpt (a row needs an answer to learn from)"
       else null end;

def row_error:
  if type != "object" then "is not a JSON object"
  elif has("conversations") | not then "has no \"conversations\""
  elif (.conversations | type) != "array" then "\"conversations\" is not a list"
  elif (.conversations | length) == 0 then "\"conversations\" is empty"
  else .conversations | conversation_error | if . == null then null else "conversations: \(.)" end end;

# One regex for the roles and one for the values of a whole row: most rows are
# good, and the message-by-message diagnosis above runs only for the others.
def good_row:
  type == "object"
  and (.conversations | type == "array"
    and all(.[]; type == "object" and (.value | type) == "string")
    and ([.[].from] | join(",") | test("^(system,)?human,gpt(,human,gpt)*$"))
    and ([.[].value] | join("\u0000") | test("(^|\u0000)\\s*(\u0000|$)") | not));

def line_error:
  (try (fromjson | [true, .]) catch [false]) as $parsed
  | if $parsed[0] then $parsed[1] | if good_row then null else row_error end
    elif blank then "is blank (JSONL needs one JSON object per line)"
    else "is not valid JSON" end;

reduce (foreach inputs as $line (0; . + 1; [., $line])) as [$n, $line]
  ({rows: 0, bad: 0, first: null};
   ($line | line_error) as $error
   | .rows += 1
   | if $error == null then . else .bad += 1 | .first //= {line: $n, reason: $error} end)
| [.rows, .bad, (.first.line // ""), (.first.reason // "")] | @tsv
'

check_dataset() {
  local file="$1" rows bad line reason
  [[ -f "$file" ]] || die "dataset $file not found" "set DATASET to an existing JSONL file, or fix the dataset entry in the experiment's sft.yaml"
  require_command jq "install jq: sudo apt-get install -y jq"
  IFS=$'\t' read -r rows bad line reason < <(jq -nR -r "$SUMMARISE_ROWS_JQ" <"$file") ||
    die "could not read $file with jq" "check the file is readable text"
  if ((rows == 0)); then die "dataset $file is empty" "point DATASET at a file with one conversation per line"; fi
  if ((bad > 0)); then
    die "dataset $file:$line: row $reason ($bad of $rows rows bad)" \
      "correct or remove the bad rows (first at line $line), then rerun make preflight"
  fi
  log "dataset $(display_path "$file"): $rows rows, all valid"
}

check_dataset "${1:?usage: scripts/check-dataset.sh FILE}"
