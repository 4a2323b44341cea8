import { type DefaultTreeAdapterMap, parse } from 'parse5';
import { describe, expect, it } from 'vitest';
import { buildExperimentReport, renderReportHtml } from '../src/index.js';
import { mixedExperimentRuns, type SyntheticRun, temporaryStore, writeRuns } from './report-fixtures.js';

type Node = DefaultTreeAdapterMap['node'];
type Element = DefaultTreeAdapterMap['element'];

/** Markup a run name, architecture tag or param value could carry into a report (MLflow refuses it in keys). */
const HOSTILE = [
  '<script>alert("name")</script>',
  '<img src=x onerror=alert(1)>',
  `"><svg onload=alert('q')>`,
  "</td></tr></table><iframe src='javascript:alert(2)'>",
];

/** The mixed experiment's runs with markup in every string a person chooses. */
function hostileRuns(): SyntheticRun[] {
  return mixedExperimentRuns().map((run, index) => {
    const markup = HOSTILE[index % HOSTILE.length] as string;
    return {
      ...run,
      name: `${run.name}${markup}`,
      ...(run.architecture === undefined ? {} : { architecture: `${run.architecture}${HOSTILE[0]}` }),
      params: { ...run.params, 'train.note': markup },
      tags: { ...run.tags, 'mlflow.note.content': markup },
    };
  });
}

function elements(node: Node, out: Element[] = []): Element[] {
  if ('tagName' in node) out.push(node);
  const children = 'childNodes' in node ? node.childNodes : [];
  for (const child of children) elements(child, out);
  if ('content' in node && node.content) elements(node.content as Node, out);
  return out;
}

function textOf(node: Node): string {
  if (node.nodeName === '#text') return (node as DefaultTreeAdapterMap['textNode']).value;
  return ('childNodes' in node ? node.childNodes : []).map(textOf).join('');
}

async function renderedReport(runs: SyntheticRun[]) {
  const uri = temporaryStore();
  await writeRuns(uri, 'injection', runs);
  const report = await buildExperimentReport({ uri, experiment: 'injection', now: new Date(0) });
  return parse(renderReportHtml(report));
}

describe('the HTML report with markup in run names, params and tags', () => {
  it('parses (as a browser does) to the same kinds of elements as a plain report, showing the markup as text', async () => {
    const plain = elements(await renderedReport(mixedExperimentRuns()));
    const hostile = await renderedReport(hostileRuns());
    const found = elements(hostile);

    const plainTags = new Set(plain.map((element) => element.tagName));
    const injected = found.filter((element) => !plainTags.has(element.tagName)).map((element) => element.tagName);
    expect(injected).toEqual([]);
    expect(found.filter((element) => ['script', 'img', 'iframe'].includes(element.tagName))).toEqual([]);
    const handlers = found.flatMap((element) =>
      element.attrs.filter((attribute) => /^on/i.test(attribute.name)).map((attribute) => attribute.name),
    );
    expect(handlers).toEqual([]);
    // Same structure: one element more or less would mean a string opened or closed one.
    expect(found.length).toBe(plain.length);

    const text = textOf(hostile);
    for (const markup of HOSTILE) expect(text).toContain(markup);
  });
});
