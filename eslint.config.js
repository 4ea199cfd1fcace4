// ESLint flat config. Type-aware rules for all TypeScript; Nx module boundaries enforce the
// dependency graph of ../shared/DESIGN.md §1 and §7 (who may import whom, and which service
// alone may import the MongoDB driver or Haraka).
import js from '@eslint/js';
import nx from '@nx/eslint-plugin';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Tag rules: which kinds of project each kind may depend on. */
const depConstraints = [
  { sourceTag: 'type:util', onlyDependOnLibsWithTags: ['type:util'] },
  { sourceTag: 'type:protocol', onlyDependOnLibsWithTags: ['type:protocol', 'type:util'] },
  { sourceTag: 'type:contracts', onlyDependOnLibsWithTags: [] },
  {
    sourceTag: 'type:lib',
    onlyDependOnLibsWithTags: ['type:lib', 'type:util', 'type:contracts', 'type:protocol'],
  },
  { sourceTag: 'type:testing', onlyDependOnLibsWithTags: ['type:lib', 'type:util', 'type:contracts'] },
  {
    sourceTag: 'type:service',
    onlyDependOnLibsWithTags: ['type:lib', 'type:util', 'type:contracts', 'type:protocol'],
  },
  // One process composed of services (services/storage-imap, ADR 0010) runs them, so imports them.
  {
    sourceTag: 'type:composition',
    onlyDependOnLibsWithTags: ['type:service', 'type:lib', 'type:util', 'type:contracts', 'type:protocol'],
  },
  {
    sourceTag: 'type:tool',
    onlyDependOnLibsWithTags: ['type:lib', 'type:util', 'type:contracts', 'type:testing', 'type:protocol'],
  },
  // Only storage talks to MongoDB; only smtp-inbound embeds Haraka (DESIGN.md §1).
  { sourceTag: 'scope:smtp-inbound', bannedExternalImports: ['mongodb'] },
  { sourceTag: 'scope:imap', bannedExternalImports: ['mongodb', 'Haraka', 'haraka-*'] },
  { sourceTag: 'scope:mta-delivery', bannedExternalImports: ['mongodb', 'Haraka', 'haraka-*'] },
  { sourceTag: 'scope:admin', bannedExternalImports: ['mongodb', 'Haraka', 'haraka-*'] },
  { sourceTag: 'scope:storage', bannedExternalImports: ['Haraka', 'haraka-*'] },
  { sourceTag: 'type:lib', bannedExternalImports: ['mongodb', 'Haraka', 'haraka-*'] },
  { sourceTag: 'type:util', bannedExternalImports: ['mongodb', 'Haraka', 'haraka-*', '@nats-io/*'] },
  // Protocol libraries are pure: no sockets, no database, no broker (STYLE.md).
  {
    sourceTag: 'type:protocol',
    bannedExternalImports: [
      'mongodb',
      'Haraka',
      'haraka-*',
      '@nats-io/*',
      '@grpc/*',
      'node:net',
      'node:tls',
      'net',
      'tls',
    ],
  },
];

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      '.bin/**',
      '.data/**',
      '.nx/**',
      'libs/contracts/src/gen/**',
      'charts/**',
      'test-artifacts/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    files: ['**/*.ts', '**/*.tsx', '**/*.mts'],
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['vitest.config.ts'] },
        tsconfigRootDir: import.meta.dirname,
      },
      globals: { ...globals.node },
    },
    plugins: { '@nx': nx },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true, requireDefaultForNonUnion: false },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        {
          selector: 'TSEnumDeclaration',
          message: 'Use an `as const` object and a union type instead of a TS enum (STYLE.md).',
        },
      ],
      '@nx/enforce-module-boundaries': [
        'error',
        { enforceBuildableLibDependency: true, allow: [], depConstraints, banTransitiveDependencies: false },
      ],
    },
  },
  {
    // The module-boundary rule sees imports, not `createRequire(...)('Haraka/…')`, the way
    // smtp-inbound loads Haraka: outside smtp-inbound, such a require is refused here too.
    files: ['**/*.ts', '**/*.tsx', '**/*.mts'],
    ignores: ['services/smtp-inbound/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'TSEnumDeclaration',
          message: 'Use an `as const` object and a union type instead of a TS enum (STYLE.md).',
        },
        {
          selector: "CallExpression[callee.name='require'] > Literal.arguments[value=/^(Haraka|haraka-)/]",
          message: 'Only smtp-inbound embeds Haraka (DESIGN.md §1).',
        },
      ],
    },
  },
  {
    // Tests may use the shared test infrastructure; everything else about boundaries still holds.
    files: ['**/test/**/*.ts', '**/*.test.ts'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: true,
          allow: [],
          depConstraints: depConstraints.map((c) =>
            c.onlyDependOnLibsWithTags
              ? { ...c, onlyDependOnLibsWithTags: [...c.onlyDependOnLibsWithTags, 'type:testing'] }
              : c,
          ),
        },
      ],
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { ...globals.node } },
  },
  prettier,
);
