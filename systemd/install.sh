#!/usr/bin/env bash
# Install or upgrade EdgeGuard as a systemd service; run it again to upgrade.
#
#   sudo systemd/install.sh                 install or upgrade, enable and start
#   sudo systemd/install.sh --no-start      install or upgrade, do not enable/start
#   sudo systemd/install.sh --uninstall     remove the service and the venv; keep site data and config
#   sudo systemd/install.sh --uninstall --purge   also delete site data (photos, captures, events) and config
#   systemd/install.sh --root DIR           everything under DIR (a throwaway root, for tests); no user, no systemctl
#
# Layout: /opt/edgeguard/venv (the program), /etc/edgeguard/edgeguard.toml (config),
# /etc/edgeguard/credentials/ (Twilio secrets for LoadCredential=), /var/lib/edgeguard (site data:
# TrainingImage/, Details/, Unknown_Face_Captures/, the cache, the event log and outbox).
set -euo pipefail

ROOT=""
UNINSTALL=0
PURGE=0
START=1
PYTHON="${PYTHON:-python3}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() { sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="${2:?--root needs a folder}"; shift 2 ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    --no-start) START=0; shift ;;
    -h|--help) usage 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage 2 ;;
  esac
done

OPT="$ROOT/opt/edgeguard"
ETC="$ROOT/etc/edgeguard"
STATE="$ROOT/var/lib/edgeguard"
UNIT="$ROOT/etc/systemd/system/edgeguard.service"
SERVICE_USER=edgeguard
REAL=0; [ -z "$ROOT" ] && REAL=1

say() { echo "install.sh: $*"; }
have_systemd() { [ "$REAL" = 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }
owner() { if [ "$REAL" = 1 ]; then chown "$@"; fi; }

if [ "$REAL" = 1 ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (sudo), or use --root DIR for a throwaway root" >&2
  exit 1
fi

uninstall() {
  if have_systemd; then
    systemctl disable --now edgeguard.service 2>/dev/null || true
  fi
  rm -f "$UNIT"
  have_systemd && systemctl daemon-reload
  rm -rf "$OPT"
  if [ "$PURGE" = 1 ]; then
    rm -rf "$STATE" "$ETC"
    if [ "$REAL" = 1 ] && id "$SERVICE_USER" >/dev/null 2>&1; then userdel "$SERVICE_USER" || true; fi
    say "removed the service, the program, the site data and the config"
  else
    say "removed the service and the program; kept $STATE (site data) and $ETC (config); --purge deletes them"
  fi
}

make_user() {
  if [ "$REAL" = 1 ]; then
    if ! id "$SERVICE_USER" >/dev/null 2>&1; then
      useradd --system --home-dir /var/lib/edgeguard --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
      say "created system user $SERVICE_USER"
    fi
    getent group video >/dev/null && usermod -a -G video "$SERVICE_USER"
  else
    say "--root: not creating the $SERVICE_USER user"
  fi
}

install_program() {
  mkdir -p "$OPT"
  if [ ! -x "$OPT/venv/bin/python" ]; then
    "$PYTHON" -m venv "$OPT/venv"
  fi
  "$OPT/venv/bin/pip" install --quiet --upgrade pip
  "$OPT/venv/bin/pip" install --quiet --upgrade "$REPO"
  cp "$REPO/README.md" "$OPT/README.md"
  say "program installed in $OPT/venv ($("$OPT/venv/bin/edgeguard" --version 2>/dev/null || echo edgeguard))"
}

site_folders() {
  # Biometric data: only the service user may read it.
  install -d -m 0700 "$STATE" "$STATE/TrainingImage" "$STATE/Details" "$STATE/Unknown_Face_Captures" "$STATE/TrainingImageLabel"
  if [ ! -f "$STATE/Details/Details.csv" ]; then
    printf 'Id,Name,phone_number,initial_deposit,category\n' > "$STATE/Details/Details.csv"
  fi
  # Photos and rows copied in by hand keep whatever mode they came with: make them private again.
  chmod 0600 "$STATE/Details/Details.csv"
  find "$STATE/TrainingImage" "$STATE/Unknown_Face_Captures" "$STATE/TrainingImageLabel" -type d -exec chmod 0700 {} +
  find "$STATE/TrainingImage" "$STATE/Unknown_Face_Captures" "$STATE/TrainingImageLabel" -type f -exec chmod 0600 {} +
  owner -R "$SERVICE_USER:$SERVICE_USER" "$STATE"
}

config_files() {
  install -d -m 0750 "$ETC"
  owner "root:$SERVICE_USER" "$ETC"
  if [ ! -f "$ETC/edgeguard.toml" ]; then
    device_config > "$ETC/edgeguard.toml"
    say "wrote $ETC/edgeguard.toml: set [camera] source, [location] and [[alerts.route]]"
  else
    device_config > "$ETC/edgeguard.toml.example"
    say "kept $ETC/edgeguard.toml; the current defaults are in edgeguard.toml.example"
  fi
  chmod 0640 "$ETC/edgeguard.toml"
  owner "root:$SERVICE_USER" "$ETC/edgeguard.toml"
  # Credentials: systemd hands them to the service (LoadCredential=); besides root only the
  # service's group may read them (for `edgeguard check`); empty files mean "not configured".
  install -d -m 0750 "$ETC/credentials"
  for name in twilio_account_sid twilio_auth_token; do
    if [ ! -f "$ETC/credentials/$name" ]; then
      install -m 0640 /dev/null "$ETC/credentials/$name"
    fi
    chmod 0640 "$ETC/credentials/$name"
  done
  owner -R "root:$SERVICE_USER" "$ETC/credentials"
}

device_config() {
  # The example config, with the site folders under the state directory.
  "$OPT/venv/bin/edgeguard" example-config | sed 's|^base_dir = "\."$|base_dir = "/var/lib/edgeguard"|'
}

unit_file() {
  install -d -m 0755 "$(dirname "$UNIT")"
  install -m 0644 "$REPO/systemd/edgeguard.service" "$UNIT"
  if have_systemd; then
    systemctl daemon-reload
    if [ "$START" = 1 ]; then
      systemctl enable edgeguard.service
      systemctl restart edgeguard.service
      say "service enabled and (re)started: journalctl -u edgeguard -f"
    fi
  else
    say "unit written to $UNIT (systemctl not used)"
  fi
}

if [ "$UNINSTALL" = 1 ]; then
  uninstall
  exit 0
fi
make_user
install_program
site_folders
config_files
unit_file
say "done. Put the Twilio token in $ETC/credentials/twilio_auth_token (and the SID next to it), then run:"
say "  sudo -u $SERVICE_USER CREDENTIALS_DIRECTORY=/etc/edgeguard/credentials $OPT/venv/bin/edgeguard --config /etc/edgeguard/edgeguard.toml check --live"
