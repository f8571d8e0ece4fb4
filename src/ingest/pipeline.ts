import { reportedValue } from '../inventory/scaling.js';
import { type IngestTarget, ingestTargets } from '../inventory/sensors.repo.js';
import type { Db } from '../storage/database.js';
import { Collector, type LineError, type ParsedBatch, locate } from './ingest.parse.js';
import { type BatchColumns, type WrittenReading, writeBatch } from './ingest.repo.js';

/**
 * The one way readings are stored, whatever brought them (HTTP, MQTT): a parsed batch from a
 * source is checked whole, its sensors resolved (a device only its own), scaled and
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

/** One batch of a group (ingestGroup): who sent it and what it holds. */
export interface SourcedBatch {
  source: IngestSource;
  parsed: ParsedBatch;
}

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

  /** One batch (an HTTP request): stored whole and durable when this resolves, or refused whole (IngestRefusal). */
  async ingest(source: IngestSource, parsed: ParsedBatch): Promise<IngestOutcome> {
    const receivedAt = Date.now();
    const { accepted, refusals } = await this.store(source.organizationId, [{ source, parsed }]);
    if (refusals[0]) throw refusals[0];
    return { received: parsed.received, accepted, receivedAt };
  }

  /**
   * Several batches at once (concurrent MQTT messages, gathered by a group commit): each is checked
   * alone and answered its own refusal (undefined: stored), and those accepted are written together,
   * one statement (or transaction) per organization, durable when this resolves. A batch refused
   * never holds back the others. A failed write rejects the whole call; readings are idempotent on
   * (sensor, ts), so writing the group's batches again stores each once.
   */
  async ingestGroup(batches: readonly SourcedBatch[]): Promise<(IngestRefusal | undefined)[]> {
    const byOrganization = new Map<string, number[]>();
    for (const [i, batch] of batches.entries()) {
      const indexes = byOrganization.get(batch.source.organizationId);
      if (indexes) indexes.push(i);
      else byOrganization.set(batch.source.organizationId, [i]);
    }
    const answers = new Array<IngestRefusal | undefined>(batches.length);
    await Promise.all(
      [...byOrganization].map(async ([organizationId, indexes]) => {
        const { refusals } = await this.store(
          organizationId,
          indexes.map((i) => batches[i]!),
        );
        for (const [k, i] of indexes.entries()) answers[i] = refusals[k];
      }),
    );
    return answers;
  }

  /** The batches of one organization: the refusal of each refused one, and the readings written by the statement holding the others. */
  private async store(
    organizationId: string,
    batches: readonly SourcedBatch[],
  ): Promise<{ accepted: number; refusals: (IngestRefusal | undefined)[] }> {
    const refusals = batches.map(({ parsed }) => this.refusalOf(parsed));
    const { targets, columns } = await this.resolve(organizationId, batches, refusals);
    if (columns.count === 0) return { accepted: 0, refusals };
    const now = Date.now();
    const seen = [...new Set(targets.map((t) => t.sensor.device_id))].filter(
      (id) => (this.lastSeenWrite.get(id) ?? 0) < now - SEEN_THROTTLE_MS,
    );
    const write = (db: Db, returnRows: boolean) => writeBatch(db, organizationId, columns, seen, returnRows);
    const stages = await this.stagesFor(organizationId);
    let accepted: number;
    if (stages.length === 0) {
      accepted = (await write(this.db, false)).accepted;
    } else {
      accepted = await this.db.transaction().execute(async (tx) => {
        const outcome = await write(tx, true);
        const written: WrittenBatch = { organizationId, readings: outcome.rows ?? [], sensors: targets };
        for (const stage of stages) await stage.run(tx, written);
        return outcome.accepted;
      });
    }
    for (const id of seen) this.lastSeenWrite.set(id, now);
    if (this.lastSeenWrite.size > 100_000) this.lastSeenWrite.clear();
    const committed: CommittedBatch = { organizationId, sensorIds: columns.sensors, accepted };
    for (const effect of this.effects) effect(committed);
    return { accepted, refusals };
  }

  /** What refuses a batch before any sensor is looked up: too many readings, bad lines, none at all. */
  private refusalOf(parsed: ParsedBatch): IngestRefusal | undefined {
    const received = parsed.received;
    if (parsed.tooMany) return new IngestRefusal('too_many', `A batch holds at most ${this.maxReadings} readings; split it.`, received);
    if (parsed.errors.length > 0) return invalid(parsed.errors, parsed.moreErrors, parsed.invalidReadings, received);
    if (received === 0) return new IngestRefusal('empty', 'The batch holds no readings.', received);
    return undefined;
  }

  private async stagesFor(organizationId: string): Promise<IngestStage[]> {
    const applicable: IngestStage[] = [];
    for (const stage of this.stages) if (!stage.appliesTo || (await stage.appliesTo(organizationId))) applicable.push(stage);
    return applicable;
  }

  /**
   * Every sensor the batches not yet refused name, with its scaling and calibration, in at most
   * two queries; then each reading's reported value. Any reading naming a sensor its source may
   * not write, or whose scaled value is not finite, refuses its batch (recorded in `refusals`),
   * every such reading named. The readings of the other batches become the statement's columns.
   */
  private async resolve(organizationId: string, batches: readonly SourcedBatch[], refusals: (IngestRefusal | undefined)[]) {
    const ids = new Set<string>();
    const keys = new Set<string>();
    const devices = new Set<string>();
    for (const [b, { source, parsed }] of batches.entries()) {
      if (refusals[b]) continue;
      for (let i = 0; i < parsed.count; i += 1) {
        if (parsed.byId[i]) ids.add(parsed.sensor[i]!);
        else {
          keys.add(parsed.sensor[i]!);
          if (source.deviceId !== undefined) devices.add(source.deviceId);
        }
      }
    }
    const byId = new Map<string, IngestTarget>();
    const byKey = new Map<string, IngestTarget>();
    const keyOf = (deviceId: string, key: string) => `${deviceId}\u0000${key}`;
    if (devices.size > 0 && keys.size > 0)
      for (const t of await ingestTargets(this.db, organizationId, { deviceIds: [...devices], keys: [...keys] }))
        byKey.set(keyOf(t.sensor.device_id, t.sensor.key), t);
    if (ids.size > 0) for (const t of await ingestTargets(this.db, organizationId, { ids: [...ids] })) byId.set(t.sensor.id, t);

    // The statement's columns, filled batch after batch (a lone batch lends its own ts and raw
    // arrays): no arrays per batch, which a group of a thousand single-reading messages would
    // otherwise allocate and copy.
    let upper = 0;
    let largest = 0;
    let live = 0;
    for (const [b, { parsed }] of batches.entries()) {
      if (refusals[b]) continue;
      upper += parsed.count;
      largest = Math.max(largest, parsed.count);
      live += 1;
    }
    const lone = live === 1 ? batches.find((_, b) => !refusals[b])!.parsed : undefined;
    const ts = lone ? lone.ts : new Float64Array(upper);
    const rawValues = lone ? lone.raw : new Float64Array(upper);
    const sensorIndex = new Int32Array(upper);
    const values = new Float64Array(upper);
    const found: IngestTarget[] = new Array(largest);
    // Each sensor written gets its 1-based position in the statement's distinct-sensor array.
    const position = new Map<IngestTarget, number>();
    let scaled = false;
    let total = 0;
    for (const [b, { source, parsed }] of batches.entries()) {
      if (refusals[b]) continue;
      const n = parsed.count;
      const isDevice = source.deviceId !== undefined;
      let errors: Collector | undefined;
      const refuse = (i: number, field: string, problem: string) => {
        errors ??= new Collector();
        errors.add(locate(parsed.base, parsed.position[i]!), field, problem);
      };
      for (let i = 0; i < n; i += 1) {
        const name = parsed.sensor[i]!;
        let target = parsed.byId[i] ? byId.get(name) : isDevice ? byKey.get(keyOf(source.deviceId!, name)) : undefined;
        // A device writes only its own sensors, whichever way it names them.
        if (target && isDevice && target.sensor.device_id !== source.deviceId) target = undefined;
        if (!target) {
          refuse(
            i,
            parsed.byId[i] ? 'sensor_id' : 'sensor',
            isDevice ? 'is not a sensor of this device' : 'is not a sensor of this organization',
          );
          continue;
        }
        const value = reportedValue(target.scaling, target.calibrationOffset, parsed.raw[i]!);
        if (!Number.isFinite(value)) {
          refuse(i, 'value', 'gives a non-finite reported value after scaling');
          continue;
        }
        found[i] = target;
        values[total + i] = value;
      }
      if (errors) {
        refusals[b] = invalid(errors.errors, errors.more, errors.invalidReadings, parsed.received);
        continue;
      }
      for (let i = 0; i < n; i += 1) {
        const target = found[i]!;
        let at = position.get(target);
        if (at === undefined) {
          at = position.size + 1;
          position.set(target, at);
        }
        const k = total + i;
        sensorIndex[k] = at;
        if (!lone) {
          ts[k] = parsed.ts[i]!;
          rawValues[k] = parsed.raw[i]!;
        }
        if (values[k] !== parsed.raw[i]) scaled = true;
      }
      total += n;
    }
    const targets = [...position.keys()];
    const columns: BatchColumns = {
      count: total,
      sensors: targets.map((t) => t.sensor.id),
      sensorIndex,
      ts,
      values: scaled ? values : null,
      rawValues,
    };
    return { targets, columns };
  }
}

function invalid(errors: readonly LineError[], more: number, invalidReadings: number, received: number): IngestRefusal {
  const message =
    `The batch was refused, nothing was stored: ${invalidReadings} of ${received} reading${received === 1 ? '' : 's'} ${invalidReadings === 1 ? 'is' : 'are'} invalid` +
    (more > 0 ? ` (the first ${errors.length} of ${errors.length + more} errors are listed).` : '.');
  return new IngestRefusal('invalid', message, received, errors, more);
}
