#!/usr/bin/env bash
# Run a command with a fresh local Mosquitto (dynamic-security plugin, no anonymous access) on a free
# port; the broker is stopped afterwards, also on failure. The command sees:
#   TWINGUARD_TEST_MQTT_PORT              the broker's port on 127.0.0.1
#   TWINGUARD_MQTT_ADMIN_PASSWORD         the dynamic-security admin's password (user twinguard-admin)
#   TWINGUARD__RESPOND__MQTT__PORT        so `twinguard respond` aims its mqtt actuator at it
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
plugin=/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so
command -v mosquitto >/dev/null && [ -f "$plugin" ] || {
  echo "Mosquitto with its dynamic-security plugin is missing: run 'make install'" >&2; exit 2; }
work="$(mktemp -d -t twinguard-mosquitto-XXXXXX)"
port="$("$here/.venv/bin/python" -c 'from twinguard.pipelines.kafka.local import free_port; print(free_port())')"
password="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
mosquitto_ctrl dynsec init "$work/dynamic-security.json" twinguard-admin "$password" >/dev/null
cat > "$work/mosquitto.conf" <<CONF
user $(id -un)
listener $port 127.0.0.1
allow_anonymous false
persistence false
plugin $plugin
plugin_opt_config_file $work/dynamic-security.json
CONF
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
pid=$!
for _ in $(seq 50); do
  (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/mosquitto.log" >&2; exit 1; }
  sleep 0.1
done
echo "Mosquitto is up: 127.0.0.1:$port pid=$pid log=$work/mosquitto.log"
export TWINGUARD_TEST_MQTT_PORT="$port" TWINGUARD_MQTT_ADMIN_PASSWORD="$password"
export TWINGUARD__RESPOND__MQTT__PORT="$port"
"$@"
