import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", ".stackbus/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["@stackbus/*/src/*", "@stackbus/*/dist/*"], message: "Import a package through its public entry." },
            { group: ["**/services/*"], message: "Packages never import services; services meet on the bus." },
          ],
        },
      ],
    },
  },
);
