#!/bin/bash
# Creates one database per LoanCRM service (each service owns its tables) on the first start of the volume.
set -euo pipefail
IFS=',' read -ra names <<< "${POSTGRES_MULTIPLE_DATABASES:-}"
for name in "${names[@]}"; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -c "CREATE DATABASE \"$name\" OWNER \"$POSTGRES_USER\""
done
