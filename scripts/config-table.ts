/** Prints the README's configuration table from the options the service really parses. */
import { OPTIONS } from "../src/config.ts";

console.log("| flag | environment | default | meaning |");
console.log("|---|---|---|---|");
for (const o of OPTIONS) {
  const flag = (o.short ? `\`-${o.short}\`, ` : "") + `\`--${o.flag}\``;
  console.log(`| ${flag} | \`${o.env}\` | ${o.default === "" ? "none" : `\`${o.default}\``} | ${o.help.replace(/\|/g, "\\|")} |`);
}
