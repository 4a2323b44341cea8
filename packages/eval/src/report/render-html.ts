import type { ExperimentReport, ReportSection, ReportTable } from './report-document.js';
import { summaryLine } from './report-summary.js';

/**
 * Everything inline (styles and SVG, no scripts, fonts or remote images), so the file opens
 * the same from disk, from an MLflow artifact view, or attached to an e-mail.
 */
const STYLE = `
body { font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; margin: 0; background: #fafafa; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 32px 48px; background: white; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-top: 12px; border-top: 1px solid #e4e4e4; }
.meta { color: #555; margin: 0 0 12px; }
nav ul { margin: 4px 0 0; padding-left: 20px; }
figure { margin: 12px 0; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 12px 0; font-size: 13px; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding-bottom: 4px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; white-space: nowrap; }
th { background: #f3f3f3; }
td.number { text-align: right; }
.table-wrap { overflow-x: auto; }
.omitted { color: #666; font-style: italic; }
.notes { color: #444; font-size: 14px; }
`;

export function renderReportHtml(report: ExperimentReport): string {
  const shown = report.sections.filter((section) => section.omitted === undefined);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(`Report: ${report.experiment}`)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>Experiment ${escapeHtml(report.experiment)}</h1>
<p class="meta">${escapeHtml(summaryLine(report))}</p>
<nav><ul>
${shown.map((section) => `<li><a href="#${section.id}">${escapeHtml(section.title)}</a></li>`).join('\n')}
</ul></nav>
${report.sections.map(renderSection).join('\n')}
</main>
</body>
</html>
`;
}

function renderSection(section: ReportSection): string {
  const parts = [`<section id="${section.id}">`, `<h2>${escapeHtml(section.title)}</h2>`];
  if (section.omitted !== undefined) {
    parts.push(`<p class="omitted">${escapeHtml(section.omitted)}</p>`);
  } else {
    if (section.description) parts.push(`<p>${escapeHtml(section.description)}</p>`);
    if (section.plot) {
      parts.push(
        `<figure role="img" aria-label="${escapeHtml(section.plot.alt)}" data-plot="${section.plot.name}">\n${section.plot.svg}\n</figure>`,
      );
    }
    for (const table of section.tables) parts.push(renderTable(table));
    if (section.notes.length > 0) {
      parts.push(`<ul class="notes">${section.notes.map((note) => `<li>${escapeHtml(note)}</li>`).join('')}</ul>`);
    }
  }
  parts.push('</section>');
  return parts.join('\n');
}

function renderTable(table: ReportTable): string {
  const header = table.columns.map((column) => `<th>${escapeHtml(column)}</th>`).join('');
  const rows = table.rows.map(
    (row) =>
      `<tr>${row.map((cell, index) => `<td${table.numeric[index] ? ' class="number"' : ''}>${escapeHtml(cell)}</td>`).join('')}</tr>`,
  );
  const caption = table.caption === undefined ? '' : `<caption>${escapeHtml(table.caption)}</caption>`;
  return `<div class="table-wrap"><table>${caption}\n<thead><tr>${header}</tr></thead>\n<tbody>\n${rows.join('\n')}\n</tbody></table></div>`;
}

function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}
