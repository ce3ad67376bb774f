#!/usr/bin/env bash
# The wheel works anywhere: build it, install it with the locked dependencies into a fresh venv
# outside the checkout, and use it from another directory as a user would.
#   usage: tests/wheel/check.sh PYTHON LOCKFILE      (make wheel-check)
set -euo pipefail
py="$1"; lock="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d -t twinguard-wheel-XXXXXX)"
cleanup() { TWINGUARD_STATE_DIR="$work/state" "$work/venv/bin/twinguard" kafka down >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
say() { printf '\n== wheel check: %s\n' "$*"; }
fail() { echo "wheel check FAILED: $*" >&2; exit 1; }

say "build"
"$py" -m build --wheel --no-isolation --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log"; fail "python -m build"; }
rm -rf "$repo/build"  # setuptools' scratch folder, stale copies of the sources otherwise
whl="$(ls "$work"/dist/twinguard-*.whl)"
echo "$whl"

say "one top-level package"
tops="$("$py" - "$whl" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
print(" ".join(sorted({n.split("/")[0] for n in names})))
PY
)"
echo "top-level entries: $tops"
for t in $tops; do
  case "$t" in twinguard|twinguard-*.dist-info) ;; *) fail "the wheel installs '$t' at top level";; esac
done

say "fresh venv outside the checkout, locked dependencies"
base="$("$py" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')"
"$base" -m venv "$work/venv"
v="$work/venv/bin"
"$v/python" -m pip install --quiet --upgrade 'pip>=24'
"$v/python" -m pip install --quiet --require-hashes -r "$lock"
"$v/python" -m pip install --quiet --no-deps "$whl"
"$v/python" -m pip check

mkdir -p "$work/elsewhere"; cd "$work/elsewhere"
# nothing of the checkout may leak in: not the folder, not PYTHONPATH
unset PYTHONPATH
"$v/python" - <<'PY'
import importlib.util, pathlib
for name in ("operators", "pipelines", "schemas", "benchmarks"):
    assert importlib.util.find_spec(name) is None, f"top-level {name!r} is importable"
import twinguard.pipelines.flow as flow
assert "site-packages" in flow.__file__, flow.__file__
print("imports from", pathlib.Path(flow.__file__).parents[2])
PY
"$v/twinguard" --help >/dev/null

say "twinguard demo (small fleet)"
"$v/twinguard" demo --devices 60 --duration 30 --out demo
test -s demo/summary.json || fail "demo wrote no summary.json"
test -s demo/threats.jsonl || fail "demo found no threats"

say "twinguard kafka up/down (jars fetched into a fresh user cache on first use)"
export XDG_CACHE_HOME="$work/cache" TWINGUARD_STATE_DIR="$work/state"
port="$("$v/python" -c 'from twinguard.pipelines.kafka.local import free_port; print(free_port())')"
"$v/twinguard" kafka up --port "$port" --data-dir "$work/kafka-data"
"$v/twinguard" kafka status
"$v/twinguard" topics create --brokers "127.0.0.1:$port" --partitions 1

say "python -m bytewax.run \"twinguard.pipelines.flow:build_flow()\" on that broker"
export TWINGUARD_HMAC_MASTER="wheel-check-$$" TWINGUARD__KAFKA__BROKERS="127.0.0.1:$port"
"$v/twinguard" simulate --devices 20 --duration 20 --labels labels.jsonl
"$v/python" -m bytewax.run "twinguard.pipelines.flow:build_flow()" >bytewax-run.log 2>&1 &
flow=$!
seen=""
for _ in $(seq 90); do  # twins appear once the flow has folded the fleet (deadline 3 min)
  if "$v/twinguard" risk --top 0 2>/dev/null | grep -Eq '^[1-9][0-9]* of [0-9]+ devices'; then seen=1; break; fi
  kill -0 "$flow" 2>/dev/null || break
  sleep 2
done
kill "$flow" 2>/dev/null || true; wait "$flow" 2>/dev/null || true
[ -n "$seen" ] || { tail -20 bytewax-run.log; fail "bytewax.run wrote no twins"; }
"$v/twinguard" risk --top 3
unset TWINGUARD_HMAC_MASTER TWINGUARD__KAFKA__BROKERS
"$v/twinguard" kafka down
ls "$XDG_CACHE_HOME"/twinguard/kafka-lib/*/kafka_2.13-*.jar >/dev/null || fail "no jars in the user cache"

say "twinguard bench --suite operators --quick"
"$v/twinguard" bench --suite operators --quick --out bench
test -s bench/results.json || fail "bench wrote no results.json"

say "passed"
