#!/usr/bin/env bats
# make env (scripts/setup-env.sh): the venv of this machine's profile from its lock,
# rebuilt only when the lock changed, with the machine's Python and pinned uv.
# The lock here holds no packages (nothing is downloaded); uv is the repo's own copy.

load test_helper

setup() {
  common_setup
  [[ -x "$SRC_ROOT/.cache/uv-0.13.8/bin/uv" ]] || fail "needs the pinned uv in .cache/ (make env installs it)"
  mkdir -p .cache
  ln -s "$SRC_ROOT/.cache/uv-0.13.8" .cache/uv-0.13.8
  printf '# no packages\n' >env/requirements-cpu.lock
  write_env GPU=cpu
}

@test "a venv of another lock is rebuilt with the machine's Python, never the venv's own" {
  # An old venv whose python3 would be found first on PATH (load_env puts .venv/bin there).
  mkdir -p .venv/bin
  printf '#!/usr/bin/env bash\necho "the old venv python ran" >&2\nexit 99\n' >.venv/bin/python3
  chmod +x .venv/bin/python3
  echo 0000 >.venv/.lab-lock.sha256
  run scripts/setup-env.sh
  assert_success
  refute_output --partial "the old venv python ran"
  assert_file_executable .venv/bin/python
  assert_equal "$(cat .venv/.lab-lock.sha256)" "$(sha256sum env/requirements-cpu.lock | cut -d' ' -f1)"
  # Bytecode is written on first import, even where PYTHONDONTWRITEBYTECODE says not to (no
  # compile of the whole lock up front).
  refute_output --partial "--compile-bytecode"
  run env PYTHONDONTWRITEBYTECODE=1 .venv/bin/python -c 'import sys; print(sys.dont_write_bytecode)'
  assert_output False
  run env PYTHONDONTWRITEBYTECODE=1 python3 -c 'import sys; print(sys.dont_write_bytecode)'
  assert_output True
  # Up to date now: left alone.
  run scripts/setup-env.sh
  assert_success
  assert_line "[env] .venv is up to date with env/requirements-cpu.lock"
}

@test "an interrupted install (no stamp) is rebuilt" {
  mkdir -p .venv/bin
  run scripts/setup-env.sh
  assert_success
  assert_line --partial "+ rm -rf .venv"
  assert_file_exist .venv/.lab-lock.sha256
}
