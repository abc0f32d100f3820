#!/usr/bin/env bats
# The README is a front page and docs/ holds the rest: the env keys documented are the keys
# env/example.env and load_env know, every document renders, every link from the front page
# resolves.

load test_helper

setup() { load_assertions; cd "$SRC_ROOT" || return 1; use_project_python; }

# The keys of the env-file table in docs/reference.md (its first column), one a line.
documented_keys() {
  # shellcheck disable=SC2016 # backticks of Markdown, not a command
  sed -n '/^## The env file/,/^## /p' docs/reference.md | grep '^| `' | cut -d'|' -f2 | grep -oE '`[A-Z_]+`' | tr -d '`' | sort -u
}

@test "docs/reference.md documents exactly the env keys of env/example.env and load_env" {
  local example known
  example="$(grep -oE '^#? ?[A-Z_]+=' env/example.env | tr -d '# =' | sort -u)"
  known="$(bash -c 'source scripts/lib/common.sh; source scripts/lib/env.sh; printf "%s\n" "${ENV_KEYS[@]}"' | sort -u)"
  assert_equal "$(documented_keys)" "$example"
  assert_equal "$(documented_keys)" "$known"
}

@test "the README is a front page: the two set-up commands, the real run, and links that resolve into docs/" {
  run wc -l <README.md
  ((output <= 200))
  run cat README.md
  assert_line "make smoke   # the whole pipeline for real on a CPU, offline, on the embedded default"
  assert_line "make test    # shellcheck, bats, pytest, then the real smoke pipeline with output checks"
  assert_line --partial "make all GPU=6"
  local link
  while read -r link; do
    [[ -f "$link" ]] || { echo "README links to a missing $link" >&2; false; }
  done < <(grep -o '](docs/[^)]*)' README.md | sed 's/^](//; s/)$//')
  run "$LAB_PYTHON" tests/md_check.py README.md docs/*.md
  assert_success
}
