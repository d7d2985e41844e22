# cli_readme.sh — the README cannot lie: its quick start's two command lines
# are the ones CI runs (.ci/run) and the main job works as written.
source "$(dirname "$0")/lib.sh"

quick=$(awk '/^## Quick start/{q=1} q&&/^```sh/{b=1;next} b&&/^```/{exit} b' README.md)
line1=$(sed -n 1p <<<"$quick")
line2=$(sed -n 2p <<<"$quick")
expect_eq "$(wc -l <<<"$quick")" 2 "quick start has exactly two command lines"
expect_eq "$line2" "make test" "the test command"
if grep -qxF "$line2" .ci/run; then ok; else fail ".ci/run does not run the README's test command '$line2'"; fi
case $line1 in ./scripts/install-deps*) ok ;; *) fail "line 1 does not install the dependencies: $line1" ;; esac
if grep -qF "./scripts/install-deps" .ci/run; then ok; else fail ".ci/run does not install the dependencies"; fi

# The main job, as written (after the install and the build), from a scratch directory.
job=${line1##*&& }
job=${job#./neuromap }
model=$(awk '{print $2}' <<<"$job")
case $model in ../shared/*) model=$(cd "$SHARED" && pwd)/${model#../shared/} ;; esac
rest=$(cut -d' ' -f3- <<<"$job")
nm=$(cd "$(dirname "$NM")" && pwd)/$(basename "$NM")
(cd "$TMP" && "$nm" map "$model" $rest) >"$TMP/job.out" 2>"$TMP/job.err"
expect_eq $? 0 "main job: $job"
if grep -q "most frequent top tokens" "$TMP/job.err"; then ok; else fail "main job printed no summary: $(cat "$TMP/job.err")"; fi
if [ -s "$TMP/stories260K.atlas.db" ]; then ok; else fail "main job wrote no atlas"; fi
finish
