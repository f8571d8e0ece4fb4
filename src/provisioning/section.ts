import type { Db } from '../storage/database.js';
import type { Organization } from '../storage/schema.js';
import type { OrganizationSpec } from './file-schema.js';

/**
 * A capability's part of applying a provisioning file: its section of each organization, upserted
 * by natural keys inside the file's one transaction. Returns how many entries it applied.
 */
export interface SectionApplier {
  section: keyof OrganizationSpec;
  apply(tx: Db, organization: Organization, spec: OrganizationSpec): Promise<number>;
}
