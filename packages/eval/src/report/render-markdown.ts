import type { ExperimentReport, ReportSection, ReportTable } from './report-document.js';
import { summaryLine } from './report-summary.js';

/** The folder next to report.md that holds the plots, as relative links use it. */
export const PLOTS_FOLDER = 'plots';

/**
 * The same report as Markdown: same tables, and the plots as images linked from `plots/`, so it
 * reads on GitHub or in an MLflow artifact view where HTML is not rendered.
 */
export function renderReportMarkdown(report: ExperimentReport): string {
  const lines = [`# Experiment ${report.experiment}`, '', summaryLine(report), ''];
  for (const section of report.sections) lines.push(...renderSection(section));
  return `${lines.join('\n').trimEnd()}\n`;
}

function renderSection(section: ReportSection): string[] {
  const lines = [`## ${section.title}`, ''];
  if (section.omitted !== undefined) return [...lines, `_${escapeText(section.omitted)}_`, ''];
  if (section.description) lines.push(escapeText(section.description), '');
  if (section.plot) lines.push(`![${section.plot.alt}](${PLOTS_FOLDER}/${section.plot.name}.svg)`, '');
  for (const table of section.tables) lines.push(...renderTable(table), '');
  for (const note of section.notes) lines.push(`- ${escapeCell(note)}`);
  if (section.notes.length > 0) lines.push('');
  return lines;
}

function renderTable(table: ReportTable): string[] {
  const lines: string[] = [];
  if (table.caption !== undefined) lines.push(`**${table.caption}**`, '');
  lines.push(`| ${table.columns.map(escapeCell).join(' | ')} |`);
  lines.push(`|${table.numeric.map((numeric) => (numeric ? ' ---: ' : ' --- ')).join('|')}|`);
  for (const row of table.rows) lines.push(`| ${row.map(escapeCell).join(' | ')} |`);
  return lines;
}

/** Angle brackets would start inline HTML in Markdown. */
function escapeText(text: string): string {
  return text.replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** Pipes would split a table cell; run names and error messages may contain them. */
function escapeCell(text: string): string {
  return escapeText(text).replaceAll('|', '\\|').replaceAll('\n', ' ');
}
