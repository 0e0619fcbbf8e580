/** Vite bundles a stylesheet imported for its side effect into a file of its own. */
declare module '*.css';
