import { specExampleYaml } from '../support/files.js';

/** The SPEC §7 example's device (Acme), and a second organization's device with a key that may rotate its token (Beta). */
export const ACME = {
  serial: 'ACME-0001',
  token: 'sc_dev_acme0001000000000000000000000',
  /** readings:read, devices:read */
  apiKey: 'sk_live_acmeci0000000000000000000000',
};
export const BETA = {
  serial: 'BETA-0001',
  token: 'sc_dev_beta0001000000000000000000000',
  /** devices:read, devices:write */
  apiKey: 'sk_live_betaops000000000000000000000',
};

export const PROVISIONING = `${specExampleYaml()}
  - slug: beta
    name: Beta
    users:
      - { email: admin@beta.test, password: "Adm1n-pass-beta", role: admin }
    api_keys:
      - { name: ops, key: "${BETA.apiKey}", scopes: [devices:read, devices:write], created_by: admin@beta.test }
    devices:
      - serial: ${BETA.serial}
        name: Beta fridge
        token: "${BETA.token}"
        sensors:
          - { key: temp, kind: temperature, unit: "°C" }
`;
