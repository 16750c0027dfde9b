#!/usr/bin/env bash
# Formats the C++ sources with clang-format-14 and the repository's .clang-format:
# src/ include/ tools/ tests/ examples/ (*.cpp *.h *.cu *.cuh; not tests/data).
#   bash scripts/format.sh           rewrite every file in place
#   bash scripts/format.sh --check   change nothing; list the files that would change, exit 1
#                                    when there is any (scripts/test.sh runs this)
# A commit that reformats the whole tree goes into .git-blame-ignore-revs
# (git config blame.ignoreRevsFile .git-blame-ignore-revs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: bash scripts/format.sh [--check]" >&2; exit 2 ;;
esac

CLANG_FORMAT=${CLANG_FORMAT:-clang-format-14}
if ! command -v "$CLANG_FORMAT" >/dev/null 2>&1; then
  echo "scripts/format.sh: $CLANG_FORMAT not found (apt-get install clang-format-14; scripts/setup.sh --tests)" >&2
  exit 2
fi

mapfile -d '' files < <(find src include tools tests examples -path tests/data -prune -o -type f \
  \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) -print0 | sort -z)

if [ "$check" -eq 0 ]; then
  printf '%s\0' "${files[@]}" | xargs -0 -n 50 "$CLANG_FORMAT" -i --style=file
  echo "scripts/format.sh: formatted ${#files[@]} files"
  exit 0
fi

changed=()
for f in "${files[@]}"; do
  if ! "$CLANG_FORMAT" --style=file "$f" | cmp -s - "$f"; then
    changed+=("$f")
  fi
done
if [ ${#changed[@]} -gt 0 ]; then
  printf '%s\n' "${changed[@]}"
  echo "scripts/format.sh: ${#changed[@]} of ${#files[@]} files are not formatted (run: bash scripts/format.sh)" >&2
  exit 1
fi
echo "scripts/format.sh: ${#files[@]} files formatted"
