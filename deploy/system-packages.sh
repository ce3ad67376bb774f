#!/usr/bin/env bash
# The Debian packages the tests drive as real parts: Mosquitto (the MQTT broker response acts on),
# Prometheus' promtool (lints our metrics and alerting rules) and headless Chromium (the dashboard
# test). Installed with apt-get when missing; run as root (CI is), or with sudo.
set -euo pipefail
declare -A NEED=(  # command -> Debian package
  [mosquitto]=mosquitto [mosquitto_pub]=mosquitto-clients [mosquitto_ctrl]=mosquitto-clients
  [promtool]=prometheus [chromium]=chromium
)
missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [[ -x "/usr/sbin/$cmd" ]] || missing+=("${NEED[$cmd]}")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "need root to apt-get install ${pkgs[*]}"; exit 1; }
  SUDO=sudo
fi
echo "installing Debian packages: ${pkgs[*]}"
# policy-rc.d 101 while installing: the packages' services are not started (tests start their own)
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  ${SUDO:-} sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
  trap '${SUDO:-} rm -f /usr/sbin/policy-rc.d' EXIT
fi
${SUDO:-} env DEBIAN_FRONTEND=noninteractive apt-get update -qq
${SUDO:-} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
