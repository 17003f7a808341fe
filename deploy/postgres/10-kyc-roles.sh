#!/usr/bin/env bash
# The postgres image runs this once, at the first start of an empty data directory
# (mount deploy/postgres at /docker-entrypoint-initdb.d): it creates kyc-poller's roles
# (see roles.psql beside it) with passwords from the environment; no defaults.
#
#   KYC_DB_OWNER_PASSWORD   kyc_owner: migrations
#   KYC_DB_WORKER_PASSWORD  kyc_worker: workers, beat, the CLI
#   KYC_DB_APP_PASSWORD     kyc_app: apps' tracking
#
# Outside the image: POSTGRES_USER/POSTGRES_DB name the superuser and the database, and
# PGHOST/PGPORT (psql's own variables) where the server is.
set -euo pipefail
: "${KYC_DB_OWNER_PASSWORD:?set KYC_DB_OWNER_PASSWORD (kyc_owner: migrations)}"
: "${KYC_DB_WORKER_PASSWORD:?set KYC_DB_WORKER_PASSWORD (kyc_worker: workers, beat, CLI)}"
: "${KYC_DB_APP_PASSWORD:?set KYC_DB_APP_PASSWORD (kyc_app: tracking)}"
here=$(dirname "${BASH_SOURCE[0]}")
# The passwords go to psql as variables (quoted by psql with :'name'), never on a command
# line another process could read: psql reads them from this environment.
export KYC_DB_OWNER_PASSWORD KYC_DB_WORKER_PASSWORD KYC_DB_APP_PASSWORD
psql -X -q -v ON_ERROR_STOP=1 \
    --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}" \
    <<SQL
\\getenv owner_password KYC_DB_OWNER_PASSWORD
\\getenv worker_password KYC_DB_WORKER_PASSWORD
\\getenv app_password KYC_DB_APP_PASSWORD
\\i '${here}/roles.psql'
SQL
echo "kyc-poller: roles kyc_owner, kyc_worker, kyc_app ready in ${POSTGRES_DB:-${POSTGRES_USER:-postgres}}" >&2
