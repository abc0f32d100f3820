#!/usr/bin/env bash
# tests/lib/smoke-copy.sh SRC DEST: a copy of the checkout SRC with the real smoke run's
# outputs, the store of shared evaluations its base model's results link to, and SRC's project
# venv (linked), for suites that change configs or outputs, or run beside the suites on SRC:
# the real checkout, which other suites read meanwhile, stays as it is. Times are kept (cp -a),
# so make's stamps and the fingerprints' caches still hold in the copy.
set -euo pipefail
src="$1" dest="$2"
mkdir -p "$dest"
cp -a "$src/Makefile" "$src/scripts" "$src/configs" "$src/env" "$src/report" "$src/build" "$dest/"
for dir in output/smoke export/smoke results/smoke .state/smoke; do
  mkdir -p "$dest/$(dirname "$dir")"
  cp -a "$src/$dir" "$dest/$dir"
done
if [[ -d "$src/results/.store" ]]; then cp -a "$src/results/.store" "$dest/results/.store"; fi
ln -s "$src/.venv" "$dest/.venv"
