/**
 * Okabe & Ito's colour-blind-safe palette (without its yellow, too pale on white), then a few
 * darker extras for experiments with many architectures.
 */
const PALETTE = [
  '#0072B2',
  '#D55E00',
  '#009E73',
  '#CC79A7',
  '#E69F00',
  '#56B4E9',
  '#000000',
  '#8C564B',
  '#7F7F7F',
  '#17BECF',
  '#BCBD22',
  '#9467BD',
];

/** A Vega-Lite colour scale for a field that holds architecture names. */
export interface ColorScale {
  domain: string[];
  range: string[];
}

/**
 * One colour per architecture, fixed for the whole report: every plot gets the full domain,
 * so `mamba+swa` has the same colour in the MQAR plot as in the compute plot even when one
 * of them lacks some architectures.
 */
export function architectureColors(architectures: Iterable<string>): ColorScale {
  const domain = [...new Set(architectures)].sort();
  return { domain, range: domain.map((_, index) => PALETTE[index % PALETTE.length] as string) };
}

/** The scale restricted to the architectures a plot shows, keeping each one's colour. */
export function colorsFor(scale: ColorScale, shown: Iterable<string>): ColorScale {
  const wanted = new Set(shown);
  const domain: string[] = [];
  const range: string[] = [];
  scale.domain.forEach((architecture, index) => {
    if (!wanted.has(architecture)) return;
    domain.push(architecture);
    range.push(scale.range[index] as string);
  });
  return { domain, range };
}
