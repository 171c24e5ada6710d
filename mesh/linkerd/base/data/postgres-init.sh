# One login role and one database per service; the role owns its database and
# no other role may connect to it, so no service reaches another's tables
# (the same layout as scripts/lib/service-databases.ts gives the local mesh).
# Run once by the postgres image on an empty data directory (sourced from
# /docker-entrypoint-initdb.d), in compose (mounted from here) and in
# Kubernetes (the postgres-init ConfigMap): the one place for the layout.
#
# No password is written here: each role's comes from the file
# $MESHWORK_SECRETS_DIR/<service>-password (compose's secrets step, or the
# Kubernetes Secret meshwork-database-passwords; both generated, never
# committed). psql's variables quote it, so no character of it reaches SQL.
secrets_dir="${MESHWORK_SECRETS_DIR:-/run/secrets/meshwork}"
for service in identity catalog orders payments notifications; do
  password_file="$secrets_dir/$service-password"
  if [ ! -s "$password_file" ]; then
    echo "postgres-init: no password for $service in $password_file (generate the secrets first)" >&2
    exit 1
  fi
  psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres -q \
    -v role="meshwork_$service" -v password="$(cat "$password_file")" <<'SQL' || exit 1
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done

# The superuser is for this init step and for an operator on the container's
# own socket, never for the network: the first matching pg_hba.conf line
# wins, so this one, put before the image's `host all all all <method>`,
# refuses it over TCP from anywhere, whatever password is tried.
hba="$PGDATA/pg_hba.conf"
{
  echo "# meshwork: the superuser never logs in over TCP (postgres-init.sh)"
  echo "host all ${POSTGRES_USER:-postgres} all reject"
  cat "$hba"
} > "$hba.meshwork" && mv "$hba.meshwork" "$hba" || exit 1
echo "postgres-init: created the roles of identity catalog orders payments notifications; superuser refused over TCP"
