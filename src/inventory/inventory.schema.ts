import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/** Tables of the inventory (migration 0004_inventory). Only src/inventory/*.repo.ts writes them. */

type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;
type UpdatedAt = ColumnType<Date, Date | string | undefined, Date | string>;

export interface LocationsTable {
  id: Generated<string>;
  organization_id: string;
  slug: string;
  name: string;
  description: string | null;
  /** IANA time zone name, informational. */
  timezone: string | null;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

export type ScalingKind = 'linear' | 'piecewise_linear';

/** One point of a piecewise-linear profile: the raw value and the engineering value it maps to. */
export interface ScalingPoint {
  raw: number;
  value: number;
}

export interface ScalingProfilesTable {
  id: Generated<string>;
  organization_id: string;
  name: string;
  description: string | null;
  kind: ScalingKind;
  /** linear: value = raw * scale + offset. */
  scale: number | null;
  offset: number | null;
  /** piecewise_linear: points sorted by raw (jsonb; written as a JSON string). */
  points: ColumnType<ScalingPoint[] | null, string | null, string | null>;
  /** Engineering unit the profile produces, informational. */
  unit: string | null;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

export interface DevicesTable {
  id: Generated<string>;
  organization_id: string;
  serial: string;
  name: string;
  description: string | null;
  model: string | null;
  firmware_version: string | null;
  location_id: string | null;
  /** sha256() (base64url) of the sc_dev_ token; globally unique, the device-token lookup key. */
  token_hash: string | null;
  token_prefix: string | null;
  token_rotated_at: Timestamp | null;
  last_seen_at: Timestamp | null;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

export interface SensorsTable {
  id: Generated<string>;
  organization_id: string;
  device_id: string;
  /** Unique per device; devices address their sensors by key at ingest. */
  key: string;
  kind: string;
  unit: ColumnType<string, string | undefined, string>;
  name: string | null;
  scaling_profile_id: string | null;
  offline_after_seconds: number | null;
  // The newest reading is in sensor_latest (readings.schema.ts), joined by sensors.repo.ts.
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

export interface CalibrationsTable {
  id: Generated<string>;
  organization_id: string;
  sensor_id: string;
  calibrated_at: Timestamp;
  due_at: Timestamp | null;
  /** Added to the scaled value at ingest while this calibration is active. */
  offset: ColumnType<number, number | undefined, number>;
  certificate: string | null;
  certificate_url: string | null;
  performed_by: string | null;
  notes: string | null;
  /** At most one active calibration per sensor (partial unique index). */
  active: ColumnType<boolean, boolean | undefined, boolean>;
  /** When its calibration.due event was raised; null until then, and again once due_at changes. */
  due_event_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  created_at: CreatedAt;
  updated_at: UpdatedAt;
}

export interface GroupSensorsTable {
  organization_id: string;
  group_id: string;
  sensor_id: string;
}

export interface InventoryTables {
  locations: LocationsTable;
  scaling_profiles: ScalingProfilesTable;
  devices: DevicesTable;
  sensors: SensorsTable;
  calibrations: CalibrationsTable;
  group_sensors: GroupSensorsTable;
}

export type Location = Selectable<LocationsTable>;
export type NewLocation = Insertable<LocationsTable>;
export type LocationUpdate = Updateable<LocationsTable>;
export type ScalingProfile = Selectable<ScalingProfilesTable>;
export type Device = Selectable<DevicesTable>;
export type Sensor = Selectable<SensorsTable>;
export type Calibration = Selectable<CalibrationsTable>;

// This capability's tables are part of the one Database type (storage/schema.ts).
declare module '../storage/schema.js' {
  interface Database extends InventoryTables {}
}
