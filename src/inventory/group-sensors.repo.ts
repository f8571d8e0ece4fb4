import type { Db } from '../storage/database.js';
import { isUuid } from '../storage/sql.js';

/** The sensors of a group (group_sensors). Composite keys refuse a sensor or group of another organization. */

export async function setGroupSensors(db: Db, organizationId: string, groupId: string, sensorIds: readonly string[]): Promise<void> {
  await db.deleteFrom('group_sensors').where('organization_id', '=', organizationId).where('group_id', '=', groupId).execute();
  await addGroupSensors(db, organizationId, groupId, sensorIds);
}

export async function addGroupSensors(db: Db, organizationId: string, groupId: string, sensorIds: readonly string[]): Promise<void> {
  if (sensorIds.length === 0) return;
  await db
    .insertInto('group_sensors')
    .values([...new Set(sensorIds)].map((sensor_id) => ({ organization_id: organizationId, group_id: groupId, sensor_id })))
    .onConflict((oc) => oc.columns(['organization_id', 'group_id', 'sensor_id']).doNothing())
    .execute();
}

/** Removes these sensors from the group (those not in it: nothing); answers how many were. */
export async function removeGroupSensors(db: Db, organizationId: string, groupId: string, sensorIds: readonly string[]): Promise<number> {
  const valid = sensorIds.filter(isUuid);
  if (!isUuid(groupId) || valid.length === 0) return 0;
  const result = await db
    .deleteFrom('group_sensors')
    .where('organization_id', '=', organizationId)
    .where('group_id', '=', groupId)
    .where('sensor_id', 'in', valid)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

export async function groupSensorIds(db: Db, organizationId: string, groupIds: readonly string[]): Promise<Map<string, string[]>> {
  const map = new Map<string, string[]>(groupIds.map((id) => [id, []]));
  if (groupIds.length === 0) return map;
  const rows = await db
    .selectFrom('group_sensors')
    .select(['group_id', 'sensor_id'])
    .where('organization_id', '=', organizationId)
    .where('group_id', 'in', [...groupIds])
    .orderBy('sensor_id')
    .execute();
  for (const row of rows) map.get(row.group_id)?.push(row.sensor_id);
  return map;
}
