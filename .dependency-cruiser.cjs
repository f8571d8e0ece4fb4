/**
 * The dependency rules of src/ (ARCHITECTURE.md, "Rules CI checks"), run by `npm run lint:deps`
 * (part of `npm run lint`). Dependencies point downwards: routes → services → repositories →
 * storage/; the shared kits (api/, http/, web/) sit above repositories, server/ above everything.
 */

/** The layers a repository or storage/ must never reach up into. */
const UPPER_LAYERS = '^src/(api|http|web|server)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'Import cycles make module initialisation order fragile and hide the real layering. Type-only imports count too: ' +
        'a cycle of types is the same tangle of responsibilities.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'storage-is-the-bottom-layer',
      severity: 'error',
      comment:
        'src/storage/ is what every capability builds on: it imports only itself (and packages), never a capability ' +
        '(identity/, inventory/, …), the API kit, http/, web/ or server/. Capabilities extend it (Database via ' +
        'declaration merging), not the other way round.',
      from: { path: '^src/storage/' },
      to: { path: '^src/', pathNot: '^src/storage/' },
    },
    {
      name: 'repositories-stay-below-http',
      severity: 'error',
      comment:
        'A repository (*.repo.ts) is SQL over storage/: it never imports the API kit (api/), http/, web/, server/ or ' +
        'any routes file. Keyset pagination and SQL helpers are in storage/keyset.ts and storage/sql.ts; HTTP errors ' +
        'are made by the routes or by http/errors.ts.',
      from: { path: '\\.repo\\.ts$' },
      to: { path: [UPPER_LAYERS, '\\.routes\\.ts$'] },
    },
    {
      name: 'src-does-not-import-tests',
      severity: 'error',
      comment: 'Shipped code never depends on the test suite or the benchmarks.',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'app-only-as-a-type',
      severity: 'error',
      comment:
        'Capabilities receive the app in register(app, services); they may name its type (import type { App }) but ' +
        'never import server/app.ts for its values (that would be a cycle through buildApp and the module list).',
      from: { path: '^src/', pathNot: '^src/server/' },
      to: { path: '^src/server/app\\.ts$', dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // See type-only imports too (they are dropped from the compiled JavaScript).
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
