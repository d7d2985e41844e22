# cli_structure.sh — the shape of the source tree (tests/structure.py) as
# this build's objects show it: no circle between files, arrows only down the
# folder order, small files, one public header that is up to date.
# Run like every cli_*.sh with the build's neuromap; the objects beside it
# are the ones measured.
BUILD=$(dirname "${1:?usage: cli_structure.sh NEUROMAP_BINARY}")
exec python3 "$(dirname "$0")/structure.py" "$BUILD"
