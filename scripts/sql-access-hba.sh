#!/usr/bin/env bash
# SQL access (docs/sql-access.md, docs/operations.md): the reporting logins must prove their
# password even where pg_hba.conf trusts everyone else (as on the CI machine). Adds, once, before
# every other rule, scram-sha-256 rules for members of the group role `sensorcloud_reporting`,
# then reloads the server's configuration. Only those logins are affected.
#
#   scripts/sql-access-hba.sh postgres://postgres@127.0.0.1:5432/postgres   (a superuser)
set -euo pipefail

admin_url="${1:?usage: $0 SUPERUSER_DATABASE_URL}"
marker='# sensorcloud SQL access'
hba_file="$(psql "$admin_url" -Atc 'show hba_file')"

if ! grep -qF "$marker" "$hba_file"; then
  rules="$(printf '%s\n' \
    "$marker: reporting logins authenticate with their password (scram-sha-256) from anywhere" \
    'local   all   +sensorcloud_reporting                scram-sha-256' \
    'host    all   +sensorcloud_reporting   0.0.0.0/0    scram-sha-256' \
    'host    all   +sensorcloud_reporting   ::/0         scram-sha-256')"
  # Rules are matched top to bottom: these go above the first rule so no trust line shadows them.
  tmp="$(mktemp)"
  awk -v rules="$rules" '!done && /^[[:space:]]*(local|host|hostssl|hostnossl|hostgssenc|hostnogssenc)[[:space:]]/ { print rules; done = 1 } { print } END { if (!done) print rules }' "$hba_file" >"$tmp"
  cat "$tmp" >"$hba_file" # keeps the file's owner and mode
  rm -f "$tmp"
fi
psql "$admin_url" -Atc 'select pg_reload_conf()' >/dev/null
# The server refuses a file it cannot parse (and keeps the old rules): say so rather than go on.
if [ "$(psql "$admin_url" -Atc "select count(*) from pg_hba_file_rules where error is not null")" != "0" ]; then
  echo "pg_hba.conf ($hba_file) has errors:" >&2
  psql "$admin_url" -Atc 'select line_number, error from pg_hba_file_rules where error is not null' >&2
  exit 1
fi
