/**
 * Money as integers. Stores keep micro-USD (1e-6 USD) and whole credits; the API speaks USD (a JSON number)
 * and credits. This is the one place that converts between them, so no other code rounds money.
 *
 * With CREDITS_PER_USD = 2 000 000, one micro-USD is exactly 2 credits, so an amount held in micro-USD
 * always converts to whole credits.
 */

export const MICROS_PER_USD = 1_000_000;
/** Credits per USD: the seed's example shows 91000 credits for $0.0455. config.ts re-exports it. */
export const CREDITS_PER_USD = 2_000_000;

/** A USD amount (a price, a price × images) to whole micro-USD, rounded to the nearest (half away from zero). */
export function usdToMicros(usd: number): number {
  if (!Number.isFinite(usd)) throw new RangeError(`a USD amount must be finite, got ${usd}`);
  const micros = Math.sign(usd) * Math.round(Math.abs(usd) * MICROS_PER_USD);
  if (!Number.isSafeInteger(micros)) throw new RangeError(`${usd} USD is too large to hold in micro-USD`);
  return micros === 0 ? 0 : micros;
}

/** Whole micro-USD back to a USD number: the nearest double to micros / 1e6, e.g. 45500 → 0.0455. */
export function microsToUsd(micros: number): number {
  return micros / MICROS_PER_USD;
}

/** Whole credits for an amount of micro-USD (exact while creditsPerUsd is a multiple of MICROS_PER_USD). */
export function microsToCredits(micros: number, creditsPerUsd: number = CREDITS_PER_USD): number {
  return Math.round((micros * creditsPerUsd) / MICROS_PER_USD);
}

/** Credits for a USD amount (a price): the amount is first taken to whole micro-USD, as it is charged. */
export function usdToCredits(usd: number, creditsPerUsd: number = CREDITS_PER_USD): number {
  return microsToCredits(usdToMicros(usd), creditsPerUsd);
}

/** What a job that draws `images` images at `priceUsd` each is charged (one ledger row). */
export function chargeFor(priceUsd: number, images: number, creditsPerUsd: number = CREDITS_PER_USD): { usdMicros: number; usd: number; credits: number } {
  const usdMicros = usdToMicros(priceUsd * images);
  return { usdMicros, usd: microsToUsd(usdMicros), credits: microsToCredits(usdMicros, creditsPerUsd) };
}

/** A credits figure as stored: whole. Values from before migration 6 of the SQLite file may carry a fraction. */
export function wholeCredits(credits: number): number {
  if (!Number.isFinite(credits)) throw new RangeError(`credits must be finite, got ${credits}`);
  return Math.round(credits);
}
