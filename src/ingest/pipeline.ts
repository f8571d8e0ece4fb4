import { reportedValue } from '../inventory/scaling.js';
import { type IngestTarget, ingestTargets } from '../inventory/sensors.repo.js';
import type { Db } from '../storage/database.js';
import { Collector, type LineError, type ParsedBatch, locate } from './ingest.parse.js';
import { type WrittenReading, writeBatch } from './ingest.repo.js';

/**
 * The one way readings are stored, whatever brought them (HTTP now, MQTT next): a parsed batch
 * from a source is checked whole, its sensors resolved (a device only its own), scaled and
 * calibrated, and written in one statement — answered only once durable.
 *
 * Seams for the capabilities that react to readings:
 * - stages (`addStage`) run inside the write's transaction and see the rows it stored
 *   (duplicates excluded); one that throws rolls the whole batch back, so what a stage records
 *   (an alarm, an outbox event) exists exactly when the readings do;
 * - after-commit effects (`afterCommit`) run once the batch is durable (dropping cached latest
 *   readings), and never fail it.
 * With no stage that applies to the organization the batch is the single autocommitted statement
 * it always was: no transaction round trips, and no rows returned.
 */

/** Who is writing: a device (sensors by key, its own only) or a credential of the organization (sensors by id). */
export interface IngestSource {
  organizationId: string;
  deviceId?: string | undefined;
}

/** What a stage sees: the readings this batch stored, and every sensor it named. */
export interface WrittenBatch {
  organizationId: string;
  readings: readonly WrittenReading[];
  sensors: readonly IngestTarget[];
}

export interface IngestStage {
  name: string;
  /**
   * Whether the stage has anything to do for the organization's batches (thresholds exist, a
   * subscription wants reading.created): from a cache, so a batch no stage applies to stays the
   * single statement it would be without stages. Absent: always.
   */
  appliesTo?(organizationId: string): boolean | Promise<boolean>;
  run(tx: Db, written: WrittenBatch): Promise<void>;
}

export interface CommittedBatch {
  organizationId: string;
  /** The sensors the batch named (whether or not each reading was new). */
  sensorIds: readonly string[];
  accepted: number;
}

export interface IngestOutcome {
  received: number;
  accepted: number;
  /** When the batch was taken in (epoch ms). */
  receivedAt: number;
}

/** A batch refused whole: nothing was stored. Transports map it to their own answer (HTTP 413/400/422, MQTT 0x99). */
export class IngestRefusal extends Error {
  constructor(
    readonly kind: 'too_many' | 'empty' | 'invalid',
    message: string,
    readonly received: number,
    readonly errors: readonly LineError[] = [],
    /** Invalid readings beyond those listed. */
    readonly more = 0,
  ) {
    super(message);
    this.name = 'IngestRefusal';
  }
}

/** Devices whose last_seen_at this node wrote recently; the SQL skips fresher rows anyway. */
const SEEN_THROTTLE_MS = 30_000;

export class IngestPipeline {
  private readonly stages: IngestStage[] = [];
  private readonly effects: ((batch: CommittedBatch) => void)[] = [];
  private readonly lastSeenWrite = new Map<string, number>();

  constructor(
    private readonly db: Db,
    readonly maxReadings: number,
  ) {}

  addStage(stage: IngestStage): void {
    this.stages.push(stage);
  }

  afterCommit(effect: (batch: CommittedBatch) => void): void {
    this.effects.push(effect);
  }

  async ingest(source: IngestSource, parsed: ParsedBatch): Promise<IngestOutcome> {
    const received = parsed.received;
    if (parsed.tooMany) throw new IngestRefusal('too_many', `A batch holds at most ${this.maxReadings} readings; split it.`, received);
    if (parsed.errors.length > 0) throw invalid(parsed.errors, parsed.moreErrors, parsed.invalidReadings, received);
    if (received === 0) throw new IngestRefusal('empty', 'The batch holds no readings.', received);

    const { sensors, columns, used } = await this.resolve(source, parsed);
    const now = Date.now();
    const seen = [...new Set([...used].map((t) => t.sensor.device_id))].filter(
      (id) => (this.lastSeenWrite.get(id) ?? 0) < now - SEEN_THROTTLE_MS,
    );
    const write = (db: Db, returnRows: boolean) => writeBatch(db, source.organizationId, columns, seen, returnRows);
    const stages = await this.stagesFor(source.organizationId);
    let accepted: number;
    if (stages.length === 0) {
      accepted = (await write(this.db, false)).accepted;
    } else {
      accepted = await this.db.transaction().execute(async (tx) => {
        const outcome = await write(tx, true);
        const written: WrittenBatch = { organizationId: source.organizationId, readings: outcome.rows ?? [], sensors };
        for (const stage of stages) await stage.run(tx, written);
        return outcome.accepted;
      });
    }
    for (const id of seen) this.lastSeenWrite.set(id, now);
    if (this.lastSeenWrite.size > 100_000) this.lastSeenWrite.clear();
    const committed: CommittedBatch = { organizationId: source.organizationId, sensorIds: sensors.map((t) => t.sensor.id), accepted };
    for (const effect of this.effects) effect(committed);
    return { received, accepted, receivedAt: now };
  }

  private async stagesFor(organizationId: string): Promise<IngestStage[]> {
    const applicable: IngestStage[] = [];
    for (const stage of this.stages) if (!stage.appliesTo || (await stage.appliesTo(organizationId))) applicable.push(stage);
    return applicable;
  }

  /**
   * Every sensor the batch names, with its scaling and calibration, in at most two queries; then
   * each reading's reported value. Any reading naming a sensor it may not write, or whose scaled
   * value is not finite, refuses the batch, every such reading named.
   */
  private async resolve(source: IngestSource, parsed: ParsedBatch) {
    const n = parsed.count;
    const isDevice = source.deviceId !== undefined;
    const ids = new Set<string>();
    const keys = new Set<string>();
    for (let i = 0; i < n; i += 1) (parsed.byId[i] ? ids : keys).add(parsed.sensor[i]!);
    const targets = new Map<string, IngestTarget>();
    const add = (found: IngestTarget[]) => {
      for (const t of found) if (!isDevice || t.sensor.device_id === source.deviceId) targets.set(t.sensor.id, t);
    };
    if (isDevice && keys.size > 0)
      add(await ingestTargets(this.db, source.organizationId, { deviceId: source.deviceId!, keys: [...keys] }));
    if (ids.size > 0) add(await ingestTargets(this.db, source.organizationId, { ids: [...ids] }));
    // Each sensor gets its 1-based position in the statement's distinct-sensor array.
    const sensors = [...targets.values()];
    const byId = new Map<string, { target: IngestTarget; index: number }>();
    const byKey = new Map<string, { target: IngestTarget; index: number }>();
    for (const [i, target] of sensors.entries()) {
      const resolved = { target, index: i + 1 };
      byId.set(target.sensor.id, resolved);
      byKey.set(target.sensor.key, resolved);
    }

    const sensorIndex = new Int32Array(n);
    const values = new Float64Array(n);
    const errors = new Collector();
    const used = new Set<IngestTarget>();
    let scaled = false;
    for (let i = 0; i < n; i += 1) {
      const resolved = parsed.byId[i] ? byId.get(parsed.sensor[i]!) : byKey.get(parsed.sensor[i]!);
      if (!resolved) {
        errors.add(
          locate(parsed.base, parsed.position[i]!),
          parsed.byId[i] ? 'sensor_id' : 'sensor',
          isDevice ? 'is not a sensor of this device' : 'is not a sensor of this organization',
        );
        continue;
      }
      const { target } = resolved;
      const value = reportedValue(target.scaling, target.calibrationOffset, parsed.raw[i]!);
      if (!Number.isFinite(value)) {
        errors.add(locate(parsed.base, parsed.position[i]!), 'value', 'gives a non-finite reported value after scaling');
        continue;
      }
      sensorIndex[i] = resolved.index;
      values[i] = value;
      if (value !== parsed.raw[i]) scaled = true;
      used.add(target);
    }
    if (errors.count > 0) throw invalid(errors.errors, errors.more, errors.invalidReadings, parsed.received);
    const columns = {
      count: n,
      sensors: sensors.map((t) => t.sensor.id),
      sensorIndex,
      ts: parsed.ts,
      values: scaled ? values : null,
      rawValues: parsed.raw,
    };
    return { sensors, columns, used };
  }
}

function invalid(errors: readonly LineError[], more: number, invalidReadings: number, received: number): IngestRefusal {
  const message =
    `The batch was refused, nothing was stored: ${invalidReadings} of ${received} reading${received === 1 ? '' : 's'} ${invalidReadings === 1 ? 'is' : 'are'} invalid` +
    (more > 0 ? ` (the first ${errors.length} of ${errors.length + more} errors are listed).` : '.');
  return new IngestRefusal('invalid', message, received, errors, more);
}
