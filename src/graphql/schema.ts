/**
 * The GraphQL schema of SPEC §8: the /v1 resources with their /v1 ids and field names in
 * camelCase, times as RFC 3339 strings, Relay-style connections for the root lists.
 */
export const SCHEMA = /* GraphQL */ `
  type Query {
    "The caller: person (if any), role and the scopes of the credential."
    me: Me!
    "The caller's organization."
    organization: Organization!
    "Devices, by name (devices:read)."
    devices(first: Int = 100, after: String): DeviceConnection!
    "One device; null when it does not exist or belongs to another organization (devices:read)."
    device(id: ID!): Device
    "Sensors, by key (devices:read)."
    sensors(first: Int = 100, after: String, deviceId: ID): SensorConnection!
    "One sensor; null when it does not exist or belongs to another organization (devices:read)."
    sensor(id: ID!): Sensor
    "A sensor's readings in time order, or bins of them with interval and aggregate (readings:read)."
    readings(
      sensorId: ID!
      "Inclusive start, RFC 3339."
      from: String
      "Exclusive end, RFC 3339."
      to: String
      "Bin width, ISO 8601 duration (PT5M, PT1H, P1D)."
      interval: String
      aggregate: Aggregate
      first: Int = 100
      after: String
    ): ReadingConnection!
    "Alarms, newest first (alarms:read)."
    alarms(status: AlarmStatus, first: Int = 100, after: String): AlarmConnection!
  }

  enum Aggregate {
    avg
    min
    max
    count
  }

  enum AlarmStatus {
    active
    acknowledged
    resolved
  }

  type PageInfo {
    hasNextPage: Boolean!
    endCursor: String
  }

  type Me {
    id: ID!
    kind: String!
    email: String
    name: String
    role: String
    scopes: [String!]!
    clientId: String
    expiresAt: String
    organizationId: ID!
    userId: ID
    deviceId: ID
  }

  type Organization {
    id: ID!
    slug: String!
    name: String!
    hasSolutionKey: Boolean!
    createdAt: String!
    updatedAt: String!
  }

  type Device {
    id: ID!
    serial: String!
    name: String!
    description: String
    model: String
    firmwareVersion: String
    locationId: ID
    tokenPrefix: String
    lastSeenAt: String
    createdAt: String!
    updatedAt: String!
    "The device's sensors, by key."
    sensors: [Sensor!]!
  }

  type DeviceEdge {
    node: Device!
    cursor: String!
  }

  type DeviceConnection {
    edges: [DeviceEdge!]!
    pageInfo: PageInfo!
  }

  type Sensor {
    id: ID!
    deviceId: ID!
    key: String!
    kind: String!
    unit: String
    name: String
    scalingProfileId: ID
    offlineAfterSeconds: Int
    createdAt: String!
    updatedAt: String!
    device: Device!
    "The newest reading; null until the sensor has one (readings:read)."
    latestReading: Reading
  }

  type SensorEdge {
    node: Sensor!
    cursor: String!
  }

  type SensorConnection {
    edges: [SensorEdge!]!
    pageInfo: PageInfo!
  }

  "A reading, or a bin of readings when an interval was asked (then value is the aggregate and count the readings in it)."
  type Reading {
    sensorId: ID!
    ts: String!
    value: Float
    rawValue: Float
    count: Int
  }

  type ReadingEdge {
    node: Reading!
    cursor: String!
  }

  type ReadingConnection {
    edges: [ReadingEdge!]!
    pageInfo: PageInfo!
  }

  type Alarm {
    id: ID!
    sensorId: ID!
    thresholdId: ID
    kind: String!
    status: AlarmStatus!
    severity: String!
    condition: String
    value: Float
    limit: Float
    startedAt: String
    triggeredAt: String!
    acknowledgedAt: String
    acknowledgedBy: ID
    resolvedAt: String
    resolvedBy: ID
    resolution: String
    createdAt: String!
    updatedAt: String!
    sensor: Sensor
  }

  type AlarmEdge {
    node: Alarm!
    cursor: String!
  }

  type AlarmConnection {
    edges: [AlarmEdge!]!
    pageInfo: PageInfo!
  }
`;
