// ESLint over the project's JavaScript (make lint, make test), as ruff is over its Python.
// The static files are plain browser scripts, no build step; the tests are Node modules.
// static/vendor/ holds third-party files as published (htmx), not ours to lint.
const js = require("@eslint/js");
const globals = require("globals");

module.exports = [
  { ignores: ["node_modules/", ".venv*/", "build/", "dist/", "staticfiles/", "test-artifacts/", "static/vendor/"] },
  js.configs.recommended,
  {
    files: ["livefeed/static/**/*.js", "static/**/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "script", globals: globals.browser },
    rules: { strict: ["error", "global"] },
  },
  {
    files: ["tests/js/**/*.mjs"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: globals.node },
  },
  {
    files: ["eslint.config.js"],
    languageOptions: { sourceType: "commonjs", globals: globals.node },
  },
];
