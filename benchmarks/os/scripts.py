"""Our own equivalents of the upstream OS-interaction script files, which are code and not in the data copy.

Upstream: THUDM/AgentTuning @ e33a45d7eab2b63cac4d1956da1e6377fca9fcc7,
``AgentBench.old/data/os_interaction/scripts/{1,2,3,4,7}/init/*.sh`` and ``scripts/5/{checking,example}/*.sh``.
Each is written here from what the original does, not copied, and keeps its quirks where they decide a
verdict (tests/test_os_checks.py pins them with accept/reject pairs):

- ``checking/0.sh`` pastes ``calc``'s output into Python source (``abs(OUTPUT - EXPECTED) < 1e-5``), so an
  output that is itself an arithmetic expression passes;
- ``checking/1.sh`` compares ``count DIR`` with a bash walk of ``DIR/*`` (no hidden entries, links followed)
  through an unquoted ``[ A x != B x ]``: an output of several words makes ``[`` fail with status 2, which
  the script does not treat as a mismatch;
- ``checking/2.sh`` defines its cases in a function that ends with ``exit 0``, so only its first case
  (``2023-5-1``, ``%Y-%m``) is ever tried.
"""

from __future__ import annotations

# init/stock-log.sh -- appends 401 random "NAME | ACTION | INDEX | COUNT" lines to /usr/stock.log.
STOCK_LOG = r"""
names=(Alice Bob)
actions=(Purchase Sell)
n=0
while [ "$n" -lt 401 ]; do
  echo "${names[RANDOM % 2]} | ${actions[RANDOM % 2]} | $((RANDOM % 100)) | $((RANDOM % 1000))" >> /usr/stock.log
  n=$((n + 1))
done
"""

# init/nested_folders.sh -- folder1/.../folder10 in the working directory (/ for the init scripts), an
# empty ``echo-love`` in each; the one in folder5 is executable and holds ``echo "I love myself."`` (no #!).
NESTED_FOLDERS = r"""
path=.
for depth in 1 2 3 4 5 6 7 8 9 10; do
  path="$path/folder$depth"
  mkdir "$path"
  touch "$path/echo-love"
  if [ "$depth" = 5 ]; then
    echo 'echo "I love myself."' > "$path/echo-love"
    chmod +x "$path/echo-love"
  fi
done
"""

# checking/0.sh -- `calc EXPR` must come within 1e-5 of Python's "%.6f" of EXPR on thirty expressions.
CALC_EXPRESSIONS = (
    "15 + (27 * 4) - 10", "8 * (14 - 6) + 12", "3 + (6.7 * 9) - 5.5", "20 / (5 + 2) - 1",
    "9 * (16 / 8) + 3", "25 - (8 * 3) + 2", "14 + (25.6 / 2) - 5.2", "18 / (6 - 2) + 9",
    "10 + (15 * 2) - 7", "30 / (5 + 1) - 2", "7 * (18 / 9) + 4", "22 - (4 * 6) + 3",
    "16 + (14.8 / 2) - 3.2", "24 / (8 - 4) + 5", "12 + (11 * 3) - 6", "35 / (7 + 1) - 4",
    "6 * (9 / 3) + 7", "19 - (7 * 2) + 5", "13 + (29.5 / 5) - 1.5", "28 / (14 - 6) + 2",
    "11 + (8 * 5) - 9", "40 / (4 + 2) - 3", "4 * (12 / 6) + 6", "23 - (6 * 4) + 8",
    "17 + (18.2 / 2) - 2.8", "36 / (6 - 3) + 10", "5 + (10 * 4) - 8", "50 / (5 + 2) - 6",
    "8 * (16 / 4) + 9", "21 - (9 * 2) + 4",
)  # fmt: skip
_QUOTED = " ".join("'" + e + "'" for e in CALC_EXPRESSIONS)
CHECK_CALC = (
    f"exprs=({_QUOTED})\n"
    + r"""
for expr in "${exprs[@]}"; do
  want=$(python3 -c "print('%.6f' % ($expr))")
  got=$(calc "$expr")
  verdict=$(echo $(python3 -c "print(abs($got - $want) < 1e-5)"))
  # unquoted on purpose: word splitting and `[`'s own errors decide as upstream
  [ ${verdict}x != Truex ] && exit 1
done
exit 0
"""
)

# The body of bash ``walk DIR`` after its ``walk() {`` line, written once for checking/1.sh and its gold
# solution example/1.sh, which counts exactly as the check does.
_WALK_BODY = r"""
  local n=0 entry
  for entry in "$1"/*; do
    if [ -f "$entry" ]; then
      n=$((n + 1))
    elif [ -d "$entry" ]; then
      n=$((n + $(walk "$entry")))
    fi
  done
  echo "$n"
}
"""

# checking/1.sh -- `count DIR` against a walk of DIR/* for six directories.
COUNT_DIRS = ("/usr/local/bin", "/root", "/bin", "/lib", "/dev", "/usr/include")
CHECK_COUNT = (
    "\nwalk() {  # regular files (links followed) under the non-hidden entries of $1, entering subdirectories"
    + _WALK_BODY
    + f"for dir in {' '.join(COUNT_DIRS)}; do\n"
    + r"""  # unquoted on purpose: several words make `[` fail (status 2), which is not a mismatch here
  [ $(walk "$dir")x != $(count "$dir")x ] && exit 1
done
exit 0
"""
)

# checking/2.sh -- only its first case runs (see the module docstring).
CHECK_DATE_FORMAT = r"""
want=$(date -d 2023-5-1 +%Y-%m)
got=$(date-format 2023-5-1 %Y-%m) || exit 1
[ "$got" = "$want" ]
"""

# example/0.sh, 1.sh, 2.sh -- the gold solutions of 5/new.json #0-#2: install calc, count, date-format.
EXAMPLE_CALC = r"""
cat > /usr/local/bin/calc <<'EOF'
#!/bin/bash
python3 -c "print('%.6f' % ($*))"
EOF
chmod +x /usr/local/bin/calc
"""
EXAMPLE_COUNT = (
    r"""
cat > /usr/local/bin/count <<'EOF'
#!/bin/bash
walk() {"""
    + _WALK_BODY
    + r"""total=$(walk "$1")
echo "$total"
EOF
chmod +x /usr/local/bin/count
"""
)
EXAMPLE_DATE_FORMAT = r"""
printf '#!/bin/bash\ndate -d "$1" +"$2"\n' > /usr/local/bin/date-format
chmod +x /usr/local/bin/date-format
"""

RECONSTRUCTED = {
    "init/stock-log.sh": STOCK_LOG,
    "init/nested_folders.sh": NESTED_FOLDERS,
    "checking/0.sh": CHECK_CALC,
    "checking/1.sh": CHECK_COUNT,
    "checking/2.sh": CHECK_DATE_FORMAT,
    "example/0.sh": EXAMPLE_CALC,
    "example/1.sh": EXAMPLE_COUNT,
    "example/2.sh": EXAMPLE_DATE_FORMAT,
}
