// Kith is a single-page app: nothing is rendered on a server, and no page is
// prerendered with data (there is no data a server could know).
export const ssr = false;
export const prerender = false;
