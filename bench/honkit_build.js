// Builds several HonKit books in one Node process (woshipm_crawler.outputs.book): loading HonKit
// costs seconds, a small book a fraction of that. Argument: a JSON file [[source, output], ...].
// Prints "built <output>" or "failed <output>: <reason>" per book; exits 1 when any failed.
"use strict";
const fs = require("fs");
const path = require("path");

const jobs = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const honkit = require(require.resolve("honkit", { paths: [path.dirname(jobs[0] ? jobs[0][0] : ".")] }));
const build = (honkit.default || honkit).commands.find((c) => c.name.startsWith("build"));

(async () => {
  let failed = 0;
  for (const [source, output] of jobs) {
    try {
      await build.exec([source, output], { log: "error", format: "website", timing: false, reload: true });
      console.log(`built ${output}`);
    } catch (err) {
      failed += 1;
      console.log(`failed ${output}: ${String(err && err.message ? err.message : err).split("\n")[0]}`);
    }
  }
  process.exit(failed ? 1 : 0);
})();
