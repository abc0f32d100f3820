#!/usr/bin/env bash
# tests/lib/mark-done.sh STEP...: in the repo of the current directory, records
# STEP's outputs as made from the current inputs, the way the step itself does on
# success: lab-inputs.json next to its outputs and its completion marker with the
# inputs' digest (merged into a marker the test already wrote). `serving` and
# `serving-base` record that our server serves the current build.
set -euo pipefail
export STEP_NAME=test
source scripts/lib/common.sh
source "$REPO_ROOT/scripts/lib/fingerprint.sh"
SKIP_GPU_CHECK=1 SKIP_SECRET_CHECKS=1 load_env
# Only the fingerprints the steps need: the evaluations' spec (every benchmark's command, on
# both models) is the costly part, built only when an evaluation is marked.
needs_evals=0
for step in "$@"; do
  case "$step" in train | export | serving | serving-base) ;; *) needs_evals=1 ;; esac
done
if ((needs_evals)); then compute_experiment_inputs; else compute_inputs serve; fi

marker_of() {
  case "$1" in
    train) printf '%s/lab-train.json' "$RUN_DIR" ;;
    export) printf '%s/lab-export.json' "$EXPORT_DIR" ;;
    *) printf '%s/%s' "$(dirname "$(step_record "$1")")" "$EVAL_DONE_FILE" ;;
  esac
}

for step in "$@"; do
  case "$step" in
    serving | serving-base)
      mkdir -p "$(server_dir)"
      printf '%s\n' "${STEP_DIGEST[serve${step#serving}]}" >"$(server_file digest)"
      ;;
    *)
      [[ -n "${STEP_DIGEST[$step]:-}" ]] || die "no step '$step' (known: ${!STEP_DIGEST[*]})"
      record="$(step_record "$step")"
      marker="$(marker_of "$step")"
      mkdir -p "$(dirname "$record")"
      cp "$(inputs_file "$step")" "$record"
      if [[ ! -f "$marker" ]]; then printf '{"score": 0.5, "num": 24}\n' >"$marker"; fi
      jq --arg digest "${STEP_DIGEST[$step]}" '. + {inputs_digest: $digest}' "$marker" >"$marker.tmp"
      mv "$marker.tmp" "$marker"
      ;;
  esac
done
