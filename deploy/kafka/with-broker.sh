#!/usr/bin/env bash
# Run a command with a fresh local Kafka broker; the broker is stopped afterwards, also on failure.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
tg="$here/.venv/bin/twinguard"
work="$(mktemp -d -t twinguard-kafka-XXXXXX)"
export TWINGUARD_STATE_DIR="$work/state"
port="$("$here/.venv/bin/python" -c 'from twinguard.pipelines.kafka.local import free_port; print(free_port())')"
cleanup() { "$tg" kafka down || true; rm -rf "$work"; }
trap cleanup EXIT
"$tg" kafka up --port "$port" --data-dir "$work/data"
export TWINGUARD_TEST_BROKERS="127.0.0.1:$port"
"$@"
