#!/usr/bin/env node
// Writes the online-replay fixture test/fixtures/eval/specialists.jsonl: three query families
// (arithmetic word problems, multiple-choice exam questions, open-ended instructions), each
// answered well (0.9) by one of three equally priced models and badly (0.2) by the other two.
// The model names say nothing about their speciality. Deterministic: same file every run.
// Usage: node scripts/make-specialists.mjs [OUT] [PER_FAMILY]
import fs from 'node:fs';

const out = process.argv[2] ?? new URL('../test/fixtures/eval/specialists.jsonl', import.meta.url).pathname;
const perFamily = Number(process.argv[3] ?? 240);
let seed = 12345;
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
const n = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));

const names = ['Maria', 'Tom', 'Aisha', 'Kenji', 'Lucas', 'Priya', 'Olga', 'Samuel', 'Fatima', 'Chen', 'Emma', 'Diego'];
const things = ['apples', 'marbles', 'stickers', 'books', 'cookies', 'pencils', 'stamps', 'eggs', 'cards', 'shells'];
const places = ['the market', 'school', 'the bakery', 'a garage sale', 'the library', 'the fair'];
function math() {
  const a = n(3, 60), b = n(2, 12), c = n(2, 9), who = pick(names), other = pick(names), t = pick(things);
  return pick([
    `${who} has ${a} ${t}. ${who} buys ${b} bags with ${c} ${t} in each at ${pick(places)}. How many ${t} does ${who} have now?`,
    `${who} had ${a + b * c} ${t} and gave ${c} of them to each of ${b} friends. How many ${t} are left?`,
    `A box holds ${c} ${t}. ${who} fills ${b} boxes and ${other} fills ${a} boxes. How many ${t} did they pack in total?`,
    `${who} earns $${a} a day and spends $${c} on lunch. After ${b} days, how much money has ${who} saved?`,
    `${who} reads ${c} pages every hour. The book has ${a * c} pages. If ${who} has read for ${b} hours, how many pages remain?`,
    `A train travels ${a} miles per hour for ${b} hours and then ${c} more miles. How far did it travel altogether?`,
  ]);
}
const subjects = [
  ['astronomy', 'Which planet in our solar system has the shortest orbital period?', ['Mercury', 'Venus', 'Earth', 'Mars']],
  ['biology', 'Which organelle is the site of cellular respiration in eukaryotic cells?', ['Mitochondrion', 'Ribosome', 'Golgi apparatus', 'Nucleus']],
  ['economics', 'Which of the following would most likely shift the demand curve for a normal good to the right?', ['An increase in consumer income', 'A rise in the good\'s price', 'A fall in the price of a substitute', 'An increase in production costs']],
  ['law', 'Which of the following is a required element of a valid contract?', ['Consideration', 'A written signature', 'A notary', 'A witness']],
  ['chemistry', 'What is the pH of a neutral aqueous solution at 25 °C?', ['7', '1', '14', '0']],
  ['philosophy', 'Which philosopher is most associated with the categorical imperative?', ['Immanuel Kant', 'John Stuart Mill', 'David Hume', 'Aristotle']],
  ['history', 'In which century did the Peace of Westphalia end the Thirty Years\' War?', ['17th', '15th', '18th', '16th']],
  ['psychology', 'Which of the following is an example of operant conditioning?', ['A rat presses a lever to receive food', 'A dog salivates at a bell', 'A child imitates a parent', 'A student memorises a list']],
  ['computer science', 'What is the worst-case time complexity of binary search on a sorted array of n elements?', ['O(log n)', 'O(n)', 'O(n log n)', 'O(1)']],
  ['medicine', 'Which vitamin deficiency causes scurvy?', ['Vitamin C', 'Vitamin D', 'Vitamin B12', 'Vitamin A']],
];
function exam() {
  const [subject, q, options] = pick(subjects);
  const order = [...options].sort(() => rnd() - 0.5);
  const lead = pick(['', `The following is a question about ${subject}.\n`, `Answer the ${subject} question below.\n`, `Question (${subject}, variant ${n(1, 99)}):\n`]);
  return `${lead}${q}\nA. ${order[0]}\nB. ${order[1]}\nC. ${order[2]}\nD. ${order[3]}\nAnswer with the letter only.`;
}
const topics = ['the sea', 'autumn', 'a rainy city', 'friendship', 'starting a new job', 'a lost cat', 'the mountains', 'coffee',
  'learning to cook', 'a long train journey', 'my grandmother\'s garden', 'moving to a new country', 'a first concert', 'winter mornings',
  'a small bookshop', 'running a marathon', 'an old bicycle', 'the night sky', 'a family recipe', 'a summer festival'];
function open() {
  const topic = pick(topics);
  return pick([
    `Write a short poem about ${topic}.`,
    `Give me five creative ideas for a weekend project related to ${topic}.`,
    `Write a friendly email inviting my neighbours to a small party about ${topic}.`,
    `Tell me a bedtime story for a six-year-old about ${topic}.`,
    `What are some tips for writing a blog post about ${topic}? Keep it casual.`,
    `Describe ${topic} in the style of a travel brochure.`,
    `Write a haiku about ${topic}.`,
    `Draft a short speech for a wedding toast that mentions ${topic}.`,
    `Suggest a catchy title and an opening paragraph for a novel about ${topic}.`,
    `Write a limerick about ${topic} for my kids.`,
    `Compose a heartfelt thank-you note to a friend, mentioning ${topic}.`,
    `Brainstorm ten social media captions about ${topic}.`,
  ]);
}

const families = [['word-problems', math], ['exam-questions', exam], ['open-ended', open]];
const models = ['model-kestrel', 'model-heron', 'model-osprey'];
const lines = [];
const seen = new Set();
families.forEach(([category, make], f) => {
  let made = 0;
  for (let tries = 0; made < perFamily && tries < perFamily * 50; tries++) {
    const query = make();
    if (seen.has(query)) continue;
    seen.add(query);
    const outcomes = Object.fromEntries(models.map((m, i) => [m, { score: i === f ? 0.9 : 0.2, cost_usd: 0.001, output_tokens: 200 }]));
    lines.push({ id: `sp-${category}-${String(made).padStart(3, '0')}`, query, category, outcomes });
    made++;
  }
});
fs.writeFileSync(out, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
console.error(`wrote ${lines.length} queries to ${out}`);
