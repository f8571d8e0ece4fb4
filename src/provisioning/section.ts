import type { Config } from '../config/config.js';
import { type SecretBox, serverSecretBox } from '../security/secret-box.js';
import type { Db } from '../storage/database.js';
import type { Organization } from '../storage/schema.js';
import type { OrganizationSpec } from './file-schema.js';

/**
 * A capability's part of applying a provisioning file: its section of each organization, upserted
 * by natural keys inside the file's one transaction. Returns how many entries it applied.
 */
export interface SectionApplier {
  section: keyof OrganizationSpec;
  apply(tx: Db, organization: Organization, spec: OrganizationSpec, context: ProvisioningContext): Promise<number>;
}

/** What an applier may need beyond the file: the server key, for secrets that are sealed rather than hashed. */
export interface ProvisioningContext {
  secrets(): SecretBox;
}

/** The context of a server or CLI run: the same server key the running server seals with. */
export function provisioningContext(config: Pick<Config, 'env' | 'dataDir'>): ProvisioningContext {
  return { secrets: serverSecretBox(config.env.SECRETS_KEY, config.dataDir) };
}

/** Without a configuration (some tests): sections that seal a secret refuse. */
export const NO_SERVER_KEY: ProvisioningContext = {
  secrets() {
    throw new Error('this section holds a secret to seal, which needs the server key (SECRETS_KEY or DATA_DIR)');
  },
};
