/**
 * Mapping words onto a small model's vocabulary. The bundled model's tokenizer (model/CONTRACT.md, "Tokenizer")
 * maps every word it was not trained on to <unk>, so "a crimson cottage by the ocean" would reach it as
 * "a <unk> <unk> by the <unk>". The default table sends common words to the nearest word it knows.
 *
 * Only the builtin engine applies it (main.ts gives it `createVocabularyAdapter(DEFAULT_BUNDLED_VOCABULARY)`), to
 * the prompt it is about to draw, after the router chose it: a real Qwen-Image understands "crimson" and must get it.
 */
import { splitByQuotes } from './quoted-text.ts';
import type { Vocabulary } from './types.ts';

/**
 * Words the bundled model was trained on, as listed for its data generator: colours, times of day, sky, ground,
 * objects, shapes and positions. Every value in DEFAULT_BUNDLED_VOCABULARY is one of these.
 */
export const BUNDLED_MODEL_WORDS: readonly string[] = Object.freeze([
  'red', 'orange', 'yellow', 'green', 'blue', 'purple', 'pink', 'white', 'black', 'gray', 'brown',
  'day', 'sunset', 'night',
  'sun', 'moon', 'stars', 'clouds',
  'grass', 'sea', 'desert', 'snow',
  'house', 'tree', 'mountain', 'circle', 'square', 'triangle',
  'left', 'centre', 'center', 'right',
]);

/**
 * The words the wider bundled model (model/scenes.py "data v2", issue 16) adds to BUNDLED_MODEL_WORDS: new things,
 * their plurals, sizes, counts and plain backgrounds. A manifest whose vocabulary holds them gets the synonyms that
 * map onto them (fitVocabulary); the v1 model does not, so for it those entries are dropped.
 */
export const BUNDLED_MODEL_WORDS_V2: readonly string[] = Object.freeze([
  ...BUNDLED_MODEL_WORDS,
  'star', 'heart', 'flower', 'car', 'boat', 'fish', 'bird',
  'houses', 'trees', 'mountains', 'circles', 'squares', 'triangles', 'hearts', 'flowers', 'cars', 'boats', 'birds',
  'small', 'big', 'two', 'three', 'background', 'plain', 'against',
]);

/**
 * Only near-synonyms, chosen so the picture keeps its meaning (ocean → sea, not beach → desert). Words with no
 * sensible counterpart (kitten, car), and words with a second meaning that would mislead (lime, jet, olive, home,
 * rose, peach, salmon, plum, dark), are left alone: <unk> is better than a wrong object.
 * Sizes (tiny, huge), plurals, the new things' synonyms and "backdrop" map onto BUNDLED_MODEL_WORDS_V2; for a model
 * without those words (the v1 vocabulary: every object at one size, one per position, on its sky and ground)
 * fitVocabulary drops them, or takes the v1 fallback where one is listed ("cottages" → "house"), so they stay <unk>.
 */
export const DEFAULT_BUNDLED_VOCABULARY: Vocabulary = Object.freeze({
  synonyms: Object.freeze({
    // colours. Two-word colours whose first word is itself in this table or the model's vocabulary come first
    // (longer keys win): "ocean blue" is a colour, not the sea; "midnight blue" is not the night; "snow white" no snow.
    crimson: 'red', scarlet: 'red', ruby: 'red', maroon: 'red', vermilion: 'red', cherry: 'red', burgundy: 'red',
    'blood red': 'red', 'cherry red': 'red', 'fire engine red': 'red',
    amber: 'orange', tangerine: 'orange', apricot: 'orange', copper: 'orange', 'burnt orange': 'orange',
    'sunset orange': 'orange',
    golden: 'yellow', gold: 'yellow', mustard: 'yellow', 'golden yellow': 'yellow', 'sunflower yellow': 'yellow',
    emerald: 'green', jade: 'green', 'forest green': 'green', 'grass green': 'green', 'sea green': 'green',
    'lime green': 'green', 'emerald green': 'green',
    azure: 'blue', navy: 'blue', cobalt: 'blue', sapphire: 'blue', cyan: 'blue', turquoise: 'blue', teal: 'blue',
    cerulean: 'blue', 'sky blue': 'blue', 'ocean blue': 'blue', 'midnight blue': 'blue', 'navy blue': 'blue',
    'royal blue': 'blue', 'baby blue': 'blue',
    violet: 'purple', lavender: 'purple', lilac: 'purple', magenta: 'purple', indigo: 'purple', mauve: 'purple',
    fuchsia: 'pink', rosy: 'pink', blush: 'pink', 'hot pink': 'pink', 'baby pink': 'pink',
    ivory: 'white', cream: 'white', pearl: 'white', 'snow white': 'white', 'pure white': 'white',
    ebony: 'black', onyx: 'black', 'jet black': 'black', 'pitch black': 'black',
    grey: 'gray', silver: 'gray', charcoal: 'gray', slate: 'gray', graphite: 'gray',
    beige: 'brown', tan: 'brown', bronze: 'brown', khaki: 'brown', chocolate: 'brown', 'chocolate brown': 'brown',
    // times of day
    daytime: 'day', daylight: 'day', noon: 'day', midday: 'day', morning: 'day', afternoon: 'day',
    evening: 'sunset', dusk: 'sunset', twilight: 'sunset', sundown: 'sunset', dawn: 'sunset', sunrise: 'sunset',
    'golden hour': 'sunset', daybreak: 'sunset',
    midnight: 'night', nighttime: 'night', nightfall: 'night', tonight: 'night',
    // sky
    sunshine: 'sun', sunlight: 'sun', sunny: 'sun',
    moonlight: 'moon', moonlit: 'moon', 'crescent moon': 'moon', 'full moon': 'moon',
    star: ['star', 'stars'], starry: 'stars', starlight: 'stars', starlit: 'stars',
    cloud: 'clouds', cloudy: 'clouds', overcast: 'clouds',
    // ground
    lawn: 'grass', meadow: 'grass', meadows: 'grass', pasture: 'grass', prairie: 'grass', grassland: 'grass',
    ocean: 'sea', oceans: 'sea', seas: 'sea', lake: 'sea', seaside: 'sea', waves: 'sea',
    sand: 'desert', sandy: 'desert', dune: 'desert', dunes: 'desert', deserts: 'desert', sahara: 'desert',
    snowy: 'snow', snowfall: 'snow', snowflakes: 'snow', winter: 'snow', ice: 'snow', icy: 'snow',
    // objects and shapes (a plural maps to the model's plural where it has one, else to the singular)
    cottage: 'house', cabin: 'house', hut: 'house', houses: ['houses', 'house'], cottages: ['houses', 'house'],
    cabins: ['houses', 'house'], huts: ['houses', 'house'], barns: ['houses', 'house'],
    barn: 'house', chalet: 'house', villa: 'house', bungalow: 'house', farmhouse: 'house', building: 'house',
    pine: 'tree', oak: 'tree', birch: 'tree', trees: ['trees', 'tree'], fir: 'tree', spruce: 'tree', palm: 'tree',
    maple: 'tree', willow: 'tree', cedar: 'tree', 'palm tree': 'tree', 'pine tree': 'tree', 'oak tree': 'tree',
    pines: ['trees', 'tree'], oaks: ['trees', 'tree'], 'palm trees': ['trees', 'tree'], 'pine trees': ['trees', 'tree'],
    hill: 'mountain', hills: ['mountains', 'mountain'], peak: 'mountain', mountains: ['mountains', 'mountain'], summit: 'mountain',
    volcano: 'mountain', peaks: ['mountains', 'mountain'],
    ball: 'circle', disc: 'circle', disk: 'circle', circles: ['circles', 'circle'], sphere: 'circle', orb: 'circle',
    dot: 'circle', globe: 'circle', balls: ['circles', 'circle'], dots: ['circles', 'circle'],
    box: 'square', squares: ['squares', 'square'], cube: 'square', rectangle: 'square', crate: 'square',
    boxes: ['squares', 'square'], cubes: ['squares', 'square'],
    pyramid: 'triangle', triangles: ['triangles', 'triangle'], pyramids: ['triangles', 'triangle'],
    // the wider model's things (dropped for a model without them)
    automobile: 'car', sedan: 'car', taxi: 'car', jeep: 'car', automobiles: 'cars',
    sailboat: 'boat', ship: 'boat', yacht: 'boat', canoe: 'boat', ships: 'boats', sailboats: 'boats',
    goldfish: 'fish', fishes: 'fish',
    sparrow: 'bird', robin: 'bird', pigeon: 'bird', parrot: 'bird', songbird: 'bird', sparrows: 'birds',
    daisy: 'flower', tulip: 'flower', sunflower: 'flower', blossom: 'flower', daisies: 'flowers', tulips: 'flowers',
    'love heart': 'heart',
    // sizes, counts, backgrounds (the wider model only)
    tiny: 'small', little: 'small', mini: 'small', miniature: 'small',
    large: 'big', huge: 'big', giant: 'big', enormous: 'big', massive: 'big',
    backdrop: 'background', 'a pair of': 'two',
    // positions
    middle: 'center', centered: 'center', centred: 'centre', central: 'center',
    leftmost: 'left', rightmost: 'right',
  }),
});

/** Rewrites the words of an unquoted piece of text; the identity when the table is empty. */
export type WordMapper = (text: string) => string;

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Keeps the matched word's casing style: "Crimson" → "Red", "OCEAN" → "SEA", "ocean" → "sea". */
function matchCase(matched: string, replacement: string): string {
  if (matched.length > 1 && matched === matched.toUpperCase() && matched !== matched.toLowerCase()) {
    return replacement.toUpperCase();
  }
  const first = matched[0]!;
  if (first !== first.toLowerCase()) return replacement[0]!.toUpperCase() + replacement.slice(1);
  return replacement;
}

const wordsOf = (text: string): string[] => text.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w !== '');

/**
 * The table fitted to one model's words (its tokenizer vocabulary, e.g. the manifest's `text.vocab`): a list of
 * replacements keeps the first whose words the model all knows; an entry with none is dropped (<unk> is better than
 * a word the model reads as <unk> anyway). A word that means something else to a wider model lists itself first
 * (`trees: ['trees', 'tree']`, `star: ['star', 'stars']`), so it reaches that model unchanged. The default model
 * words are the v1 bundled model's.
 */
export function fitVocabulary(vocabulary: Vocabulary, modelWords: Iterable<string> = BUNDLED_MODEL_WORDS): Vocabulary {
  const known = new Set([...modelWords].map((w) => w.toLowerCase()));
  const synonyms: Record<string, string> = {};
  for (const [from, to] of Object.entries(vocabulary.synonyms)) {
    const choice = (typeof to === 'string' ? [to] : to).find((c) => wordsOf(c).every((w) => known.has(w)));
    if (choice !== undefined) synonyms[from] = choice;
  }
  return { synonyms };
}

/** Compiles a vocabulary once into a mapper; longer keys win ("full moon" before "moon"). A list of replacements
 * uses its first (fit the table to a model first: fitVocabulary). */
export function compileVocabulary(vocabulary: Vocabulary | undefined): WordMapper {
  const table = new Map<string, string>();
  for (const [from, to] of Object.entries(vocabulary?.synonyms ?? {})) {
    const key = from.trim().toLowerCase();
    const replacement = typeof to === 'string' ? to : to[0];
    if (key !== '' && typeof replacement === 'string') table.set(key, replacement);
  }
  if (table.size === 0) return (text) => text;
  const alternatives = [...table.keys()]
    .sort((a, b) => b.length - a.length)
    .map((key) => escapeRegExp(key).replace(/ +/g, '\\s+'))
    .join('|');
  const pattern = new RegExp(`(?<![\\p{L}\\p{N}])(?:${alternatives})(?![\\p{L}\\p{N}])`, 'giu');
  return (text) =>
    text.replace(pattern, (matched) => {
      const replacement = table.get(matched.toLowerCase().replace(/\s+/g, ' '));
      return replacement === undefined ? matched : matchCase(matched, replacement);
    });
}

/** Rewrites a whole prompt for one engine; the identity when it has nothing to change. */
export type PromptAdapter = (prompt: string) => string;

const COUNT_WORDS: Record<string, 2 | 3> = { two: 2, '2': 2, 'a pair of': 2, 'a couple of': 2, three: 3, '3': 3 };
const COUNT_THINGS = ['house', 'tree', 'mountain', 'circle', 'square', 'triangle'];
const COUNT_MODIFIERS = new Set([
  'red', 'orange', 'yellow', 'green', 'blue', 'purple', 'pink', 'white', 'black', 'gray', 'grey', 'brown',
  'small', 'big', 'tiny', 'little', 'large', 'huge', 'giant',
]);
const COUNT_PATTERN = new RegExp(
  String.raw`(?<![\p{L}\p{N}])(two|three|2|3|a\s+pair\s+of|a\s+couple\s+of)\s+((?:[\p{L}]+\s+){0,3}?)(${COUNT_THINGS.join('|')})s?(?![\p{L}\p{N}])` +
    String.raw`(\s+(?:on|in|at|to)\s+(?:the\s+)?(?:left|right|middle|center|centre)(?![\p{L}\p{N}]))?`,
  'giu',
);

/**
 * "two red trees" → "a red tree on the left and a red tree on the right" (three: left, center, right), for a model
 * with no count words: the v1 bundled model draws at most one thing per position, so a count becomes the positions
 * it can draw. Left alone: a count that names its own position ("two trees on the left", which one model position
 * cannot hold), words between the count and the thing other than colours and sizes ("two of the trees"), and things
 * the model has no plural picture for. Runs on already-mapped text (so "a pair of crimson cottages" arrives as
 * "a pair of red house").
 */
export function expandCounts(text: string): string {
  return text.replace(COUNT_PATTERN, (matched, count: string, mods: string, thing: string, position: string | undefined) => {
    const words = mods.trim() === '' ? [] : mods.trim().toLowerCase().split(/\s+/);
    if (position !== undefined || !words.every((w) => COUNT_MODIFIERS.has(w))) return matched;
    const n = COUNT_WORDS[count.toLowerCase().replace(/\s+/g, ' ')]!;
    const one = [...words, thing.toLowerCase()].join(' ');
    const a = /^[aeiou]/.test(one) ? 'an' : 'a';
    return n === 2 ? `${a} ${one} on the left and ${a} ${one} on the right` : `${a} ${one} on the left, ${a} ${one} in the center and ${a} ${one} on the right`;
  });
}

/**
 * Compiles a vocabulary once into a prompt adapter that maps the words outside quotes and leaves quoted text (the
 * text to be drawn in the image) and everything else as it is. `modelWords` (the model's tokenizer vocabulary)
 * fits the table to that model first (fitVocabulary); without it the table is used as written.
 */
export function createVocabularyAdapter(vocabulary: Vocabulary, options: { modelWords?: Iterable<string> } = {}): PromptAdapter {
  const known = options.modelWords ? new Set([...options.modelWords].map((w) => w.toLowerCase())) : null;
  const mapWords = compileVocabulary(known ? fitVocabulary(vocabulary, known) : vocabulary);
  // a model that knows positions but no count words gets counts as positions (expandCounts)
  const counts = known !== null && !known.has('two') && ['left', 'right', 'center'].every((w) => known.has(w));
  return (prompt) =>
    splitByQuotes(prompt)
      .map((segment) => (segment.isQuoted ? segment.text : counts ? expandCounts(mapWords(segment.text)) : mapWords(segment.text)))
      .join('');
}
