// Lint: eslint recommended + typescript-eslint recommended (syntax only, no type-aware rules: fast), plus a few
// house rules. `npm run lint`; types are checked separately by `npm run typecheck`.
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig(
  { ignores: ["dist/", "node_modules/", "models/", "coverage/"] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" }],
      // `import("…").T` annotations are allowed: they keep heavy modules out of the load path until used.
      "@typescript-eslint/consistent-type-imports": ["error", { disallowTypeAnnotations: false }],
      eqeqeq: ["error", "smart"],
    },
  },
);
