/**
 * Language-model metrics from a summed loss: mean loss (nats per token), perplexity, and bits
 * per byte = total nats / (ln 2 · bytes of text predicted), the one of the three that does not
 * depend on the tokenizer (a tokenizer with longer tokens has a higher loss per token).
 */
export function languageModelMetrics(
  totalNats: number,
  tokens: number,
  bytes: number,
): { loss: number; perplexity: number; bitsPerByte: number } {
  const loss = totalNats / tokens;
  return { loss, perplexity: Math.exp(loss), bitsPerByte: totalNats / (Math.LN2 * bytes) };
}
