"""Equivalents of the upstream OS-interaction script files, which are code and not in the data copy.

Each is written from what its problem says, not copied: the init scripts build the state that the
descriptions talk about, the ``checking/N.sh`` scripts test the command that the problem asks for.
Their answers are always computed inside the same sandbox, so the exact random content or layout
does not need to match upstream.
"""

from __future__ import annotations

# init/stock-log.sh -- "Stock logs are shown in /usr/stock.log. The last two columns are stock index
# and count." The example answers grep for "Alice | Sell" and split on "|".
STOCK_LOG = r"""
traders=(Alice Bob)
sides=(Purchase Sell)
: > /usr/stock.log
for n in $(seq 1 400); do
  printf '%s | %s | %d | %d\n' "${traders[RANDOM % 2]}" "${sides[RANDOM % 2]}" \
    $((RANDOM % 100)) $((RANDOM % 1000)) >> /usr/stock.log
done
"""

# init/nested_folders.sh -- "I had a directory for executables, and there was an executable
# echo-love in there." Ten nested folders under the working directory hold an ``echo-love`` file
# each; only one is executable, and it prints what the check expects ("I love myself.").
NESTED_FOLDERS = r"""
path=.
for depth in $(seq 1 10); do
  path="$path/folder$depth"
  mkdir -p "$path"
  touch "$path/echo-love"
done
printf '#!/bin/bash\necho "I love myself."\n' > ./folder1/folder2/folder3/folder4/folder5/echo-love
chmod +x ./folder1/folder2/folder3/folder4/folder5/echo-love
"""

# checking/0.sh -- a `calc` command evaluating + - * / and parentheses to within 1e-5.
CHECK_CALC = r"""
command -v calc >/dev/null || exit 1
for e in "6 * (9 / 3) + 7" "15 + (27 * 4) - 10" "3 + (6.7 * 9) - 5.5" "20 / (5 + 2) - 1" \
         "22 - (4 * 6) + 3" "14 + (25.6 / 2) - 5.2" "50 / (5 + 2) - 6" "(1 + 2) * (3 - 4.5) / 2"; do
  got=$(calc "$e" 2>/dev/null | tail -n 1)
  python3 -c 'import sys; sys.exit(0 if abs(float(sys.argv[1]) - eval(sys.argv[2])) < 1e-5 else 1)' \
    "$got" "$e" 2>/dev/null || exit 1
done
exit 0
"""

# checking/1.sh -- a `count DIR` command printing the number of regular files under DIR
# (recursively); links and other non-regular files are not counted as regular files.
CHECK_COUNT = r"""
command -v count >/dev/null || exit 1
root=$(mktemp -d)
mkdir -p "$root/a/b/c" "$root/d" "$root/empty"
touch "$root/f1" "$root/a/f2" "$root/a/b/f3" "$root/a/b/c/f4" "$root/d/.hidden"
ln -s "$root/f1" "$root/link1"
ln -s "$root/a" "$root/d/dirlink"
mkfifo "$root/a/fifo"
for dir in "$root" "$root/a" "$root/empty" /usr/bin; do
  want=$(find "$dir" -type f | wc -l)
  got=$(count "$dir" 2>/dev/null | tail -n 1 | tr -d '[:space:]')
  [ "$got" = "$want" ] || { rm -rf "$root"; exit 1; }
done
rm -rf "$root"
exit 0
"""

# checking/2.sh -- a `date-format DATE FORMAT` command: `date-format 2023-5-1 '%Y/%m/%d'` -> 2023/05/01.
CHECK_DATE_FORMAT = r"""
command -v date-format >/dev/null || exit 1
while IFS='|' read -r d f; do
  want=$(date -d "$d" +"$f")
  got=$(date-format "$d" "$f" 2>/dev/null | tail -n 1)
  [ "$got" = "$want" ] || exit 1
done <<'EOF'
2023-5-1|%Y/%m/%d
2023-05-01|%Y/%m/%d
1999-12-31|%d.%m.%Y
2024-2-29|%A, %B %d, %Y
2020-7-4|%y%m%d
EOF
exit 0
"""

RECONSTRUCTED = {
    "init/stock-log.sh": STOCK_LOG,
    "init/nested_folders.sh": NESTED_FOLDERS,
    "checking/0.sh": CHECK_CALC,
    "checking/1.sh": CHECK_COUNT,
    "checking/2.sh": CHECK_DATE_FORMAT,
}
