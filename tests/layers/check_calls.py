#!/usr/bin/env python3
"""check_calls - the calls between the files of one module run one way.

Usage: check_calls.py ARCHIVE FILE=LEVEL [FILE=LEVEL ...]

Reads the symbols of the objects in ARCHIVE (a static library) with nm
and fails when an object calls a function defined by an object of the
same or a higher level (a sibling or a caller): shared helpers belong in a
lower file that both sides call. Objects not named are not checked.
"""
import subprocess
import sys


def symbols(archive):
    out = subprocess.run(['nm', '-A', '--defined-only', archive],
                         capture_output=True, text=True, check=True).stdout
    und = subprocess.run(['nm', '-A', '--undefined-only', archive],
                         capture_output=True, text=True, check=True).stdout
    defined, used = {}, {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in 'TDBR':
            obj = parts[0].rsplit(':', 2)[-2].rsplit('/', 1)[-1]
            defined[parts[2]] = obj
    for line in und.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[-2] == 'U':
            obj = parts[0].rsplit(':', 2)[-2].rsplit('/', 1)[-1]
            used.setdefault(obj, set()).add(parts[-1])
    return defined, used


def main():
    archive = sys.argv[1]
    levels = {}
    for arg in sys.argv[2:]:
        name, level = arg.split('=')
        levels[name + '.o'] = int(level)
    defined, used = symbols(archive)
    bad = []
    for obj, syms in used.items():
        if obj not in levels:
            continue
        for s in sorted(syms):
            owner = defined.get(s)
            if owner in levels and owner != obj and \
                    levels[owner] >= levels[obj]:
                bad.append(f'{obj} calls {s} of {owner} '
                           f'(level {levels[owner]} >= {levels[obj]})')
    missing = [o for o in levels if o not in used and o not in
               defined.values()]
    if missing:
        bad.append('not in the archive: ' + ', '.join(missing))
    for b in bad:
        print(b)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
