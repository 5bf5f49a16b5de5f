/**
 * fastest-validator's class, loaded once. The package is CommonJS (`module.exports = class`) while
 * its typings describe an ES module with the class under `default`, which Node's ES import does not
 * give: it is required as what it is, and typed by its typings.
 */
import { createRequire } from "node:module";
import type FastestValidator from "fastest-validator";

export const Validator: typeof FastestValidator.default = createRequire(import.meta.url)("fastest-validator");
