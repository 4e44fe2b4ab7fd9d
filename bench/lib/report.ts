/**
 * What a scenario hands back (sections of tables, goals and notes) and how it becomes
 * markdown: BENCHMARKS.md and the console print the same text.
 */
import { fmtRatio, median } from "./stats.ts";

export interface Table {
  title?: string;
  headers: string[];
  rows: string[][];
}

export interface Goal {
  goal: string;
  measured: string;
  met: boolean;
  /** How far over or under the target, e.g. "1.8× the target" or "-23% short". */
  margin: string;
}

export interface Section {
  id: string;
  title: string;
  intro: string[];
  tables: Table[];
  goals: Goal[];
  notes: string[];
  /** Rendered last: text paragraphs and tables (e.g. a profile summary). */
  appendix: Array<string | Table>;
}

export function newSection(id: string, title: string): Section {
  return { id, title, intro: [], tables: [], goals: [], notes: [], appendix: [] };
}

/** The runs of one figure and their median. */
export interface Figure {
  runs: number[];
  median: number;
}

export function figure(runs: number[]): Figure {
  return { runs, median: median(runs) };
}

export const FIGURE_HEADERS = ["figure", "median", "runs", "baseline", "baseline median", "ratio", "notes"];

/** One table row: the figure, its runs, its baseline and the ratio figure / baseline. */
export function figureRow(
  name: string,
  value: Figure,
  format: (n: number) => string,
  baseline?: { name: string; value: Figure },
  notes = "",
): string[] {
  return [
    name,
    format(value.median),
    value.runs.map(format).join(" / "),
    baseline?.name ?? "–",
    baseline ? format(baseline.value.median) : "–",
    baseline ? fmtRatio(value.median / baseline.value.median) : "–",
    notes,
  ];
}

/** "at least" goal: value >= target. */
export function atLeast(goal: string, value: number, target: number, format: (n: number) => string): Goal {
  const met = value >= target;
  const r = value / target;
  return { goal, measured: format(value), met, margin: met ? `${fmtRatio(r)} the target` : `${((r - 1) * 100).toFixed(0)}% short` };
}

/** "at most" goal: value <= target. */
export function atMost(goal: string, value: number, target: number, format: (n: number) => string): Goal {
  const met = value <= target;
  const r = value / target;
  return {
    goal,
    measured: format(value),
    met,
    margin: met ? `${((1 - r) * 100).toFixed(0)}% under the limit` : `${((r - 1) * 100).toFixed(0)}% over the limit`,
  };
}

function escapeCell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

export function renderTable(t: Table): string {
  const lines: string[] = [];
  if (t.title) lines.push(`**${t.title}**`, "");
  lines.push(`| ${t.headers.map(escapeCell).join(" | ")} |`);
  lines.push(`|${t.headers.map(() => "---").join("|")}|`);
  for (const r of t.rows) lines.push(`| ${r.map(escapeCell).join(" | ")} |`);
  return lines.join("\n");
}

export function renderGoals(goals: readonly Goal[]): string {
  return renderTable({
    headers: ["goal", "measured (median)", "result", "by how much"],
    rows: goals.map((g) => [g.goal, g.measured, g.met ? "**met**" : "**missed**", g.margin]),
  });
}

export function renderSection(s: Section, level = 2): string {
  const h = "#".repeat(level);
  const parts: string[] = [`${h} ${s.title}`, ""];
  for (const p of s.intro) parts.push(p, "");
  for (const t of s.tables) parts.push(renderTable(t), "");
  if (s.goals.length) parts.push(`${h}# Goals`, "", renderGoals(s.goals), "");
  if (s.notes.length) {
    parts.push(`${h}# Notes`, "");
    for (const n of s.notes) parts.push(n.startsWith("```") || n.startsWith("|") ? n : `- ${n}`);
    parts.push("");
  }
  for (const a of s.appendix) parts.push(typeof a === "string" ? a : renderTable(a), "");
  return parts.join("\n");
}
