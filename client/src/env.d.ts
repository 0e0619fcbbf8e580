/** Vite bundles a stylesheet imported for its side effect into a file of its own. */
declare module '*.css';

/** The URL of a worker module built into the page's own bundle (client/vite.config.ts). */
declare module '*?page-worker' {
  const url: string;
  export default url;
}
