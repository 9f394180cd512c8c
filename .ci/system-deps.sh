#!/usr/bin/env bash
# The Debian packages the course needs beyond Python: Chromium (the browser tests) and bubblewrap
# (the grading sandbox). Installs what is missing with apt: directly as root, through sudo
# otherwise; says what to run when neither is possible. COURSE_SKIP_SYSTEM_TESTS=1 turns a
# missing package into a warning (the test suite then skips, and reports, the tests that need it).
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
[ ${#missing[@]} -eq 0 ] && exit 0

install=(apt-get install -y -qq --no-install-recommends "${missing[@]}")
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
  as_root=(sudo)  # no password needed, or a terminal to ask for it
else
  as_root=none
fi

if [ "${as_root[*]}" != none ] && command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: installing ${missing[*]} with apt-get" >&2
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive "${install[@]}"
  exit 0
fi

why="neither root nor sudo is available"
command -v apt-get >/dev/null 2>&1 || why="apt-get is not available (not a Debian-like system)"
cat >&2 <<MSG
system-deps: missing ${missing[*]}, and $why to install them.
  Fix: as an administrator, run  apt-get install ${missing[*]}
  (the browser tests need chromium; the grading sandbox needs bubblewrap).
  Or set COURSE_SKIP_SYSTEM_TESTS=1 to go on without them: \`make test\` then skips,
  and lists, the tests that need them.
MSG
[ "${COURSE_SKIP_SYSTEM_TESTS:-}" = 1 ] && exit 0
exit 1
