/**
 * One PostgreSQL database and one login role per service, as the local mesh,
 * compose and CI run them: the role owns its database, and no other role may
 * even connect to it, so a service cannot read another service's tables.
 */
import pg from "pg";

export const SERVICES_WITH_DATABASES = ["identity", "catalog", "orders", "payments", "notifications"] as const;

export interface ServiceDatabase {
  readonly service: string;
  readonly role: string;
  readonly database: string;
  /** URL for the service, on the host and port of the admin URL. */
  readonly url: string;
}

const identifier = (name: string): string => {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unsafe SQL identifier ${name}`);
  return `"${name}"`;
};

export interface EnsureOptions {
  /**
   * The role's password, for a server that does not trust local connections
   * (`npm run db:setup -- --passwords`): set on a new role, and set anew on an
   * existing one. Without it the role has no password, as the local trust
   * server of the mesh and the tests wants.
   */
  readonly password?: string;
}

/** Creates (or keeps) the role and database of `service`; `suffix` keeps test copies apart. */
export async function ensureServiceDatabase(adminUrl: string, service: string, suffix = "", options: EnsureOptions = {}): Promise<ServiceDatabase> {
  const role = `meshwork_${service}${suffix}`;
  const database = role;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const roleExists = await admin.query("select 1 from pg_roles where rolname = $1", [role]);
    if (roleExists.rowCount === 0) await admin.query(`create role ${identifier(role)} login`);
    // DDL takes no bind parameters: the driver's own literal quoting, never string building.
    if (options.password !== undefined) await admin.query(`alter role ${identifier(role)} password ${admin.escapeLiteral(options.password)}`);
    const dbExists = await admin.query("select 1 from pg_database where datname = $1", [database]);
    if (dbExists.rowCount === 0) await admin.query(`create database ${identifier(database)} owner ${identifier(role)}`);
    // PUBLIC may connect to any database by default: take that away, give it to the owner only.
    await admin.query(`revoke all on database ${identifier(database)} from public`);
    await admin.query(`grant connect, create, temporary on database ${identifier(database)} to ${identifier(role)}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.username = role;
  url.password = options.password === undefined ? "" : encodeURIComponent(options.password);
  url.pathname = `/${database}`;
  return { service, role, database, url: url.toString() };
}

/** Drops what ensureServiceDatabase created (for tests). */
export async function dropServiceDatabase(adminUrl: string, created: ServiceDatabase): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${identifier(created.database)} with (force)`);
    await admin.query(`drop role if exists ${identifier(created.role)}`);
  } finally {
    await admin.end();
  }
}
