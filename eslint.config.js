// Lint rules that catch real bugs (floating promises, comma-operator tricks, unused code),
// not style: formatting is prettier's (.prettierrc.json). `npm run lint` / `npm run format`.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'native-build/', 'wasm/', 'bench/data/', 'test/.cache/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { project: './tsconfig.eslint.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-sequences': ['error', { allowInParentheses: false }],
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-throw-literal': 'error',
      'prefer-const': 'error',
      // Control characters in patterns are deliberate here: paths and header strings are checked for them.
      'no-control-regex': 'off',
      // Aligned columns in expected CLI output are clearer written out.
      'no-regex-spaces': 'off',
      // A generator inside a method names the instance it reads from.
      '@typescript-eslint/no-this-alias': 'off',
    },
  },
  {
    // Tests edit parsed JSON freely to damage it on purpose.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: globals.node },
  },
);
