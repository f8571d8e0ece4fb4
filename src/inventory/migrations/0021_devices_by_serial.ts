import { type Kysely, sql } from 'kysely';

/** Devices by serial across organizations: an existing MQTT broker's topics name a device by serial alone (mqtt/shared-subscription.ts). */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index devices_serial on devices (serial)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index devices_serial`.execute(db);
}
